"""Quota-attainment forecast for a quarter, as of a date inside it, and its backtest.

The package: :mod:`.hierarchy` (rep, team, region, company and their quotas),
:mod:`.win_model` (which open deals win), :mod:`.new_business`,
:mod:`.simulation` (the Monte Carlo), :mod:`.calibration` (the spread and the
combination, measured on past quarters), :mod:`.baselines`, :mod:`.estimator`
(:class:`QuotaForecaster`), :mod:`.results` (:class:`QuotaForecast`, what
``predict`` returns) and :mod:`.backtest`. The deal states and snapshots it
starts from are :mod:`workbench.snapshot`, shared with the KPIs.

Method
------
For every rep, team, region and the company, the bookings of the quarter are

    closed-won so far + what the open pipeline still wins before quarter end
                      + what is created and won before quarter end,

and each term is forecast from what was known on the as-of date only.

*What the models learn from.* The models learn from the complete quarters
before the as-of quarter (at most ``history_quarters`` of them): their outcome
is known, so a deal's label ("won before that quarter's end") and the weekly
bookings are final. Because every as-of date of a quarter sees the same
complete quarters, the learned part is the same for every week of the quarter;
only the snapshot and the bookings so far move (:meth:`QuotaForecast.observe`).

*Open pipeline.* Historical snapshots are taken at the start of each week of
each past quarter (:func:`workbench.snapshot.snapshot`): every deal open then,
with its stage, age, time in stage, days since its last activity, follow-ups,
skipped stages and regressions so far, its amount, the days left in the
quarter, any customer-type attribute and, where the CRM records them, its
expected close date (due this quarter, overdue, how far out) and how often the
close date was pushed and the amount changed so far. A logistic regression
(statsmodels ``Logit``, fitted by Newton's method) gives P(won before quarter
end | these); the stage and the amount also bend the effect of the days left,
and two hinges on the days left let the last weeks differ (quarter-end
rushes). Reps and teams differ, and many have thin histories, so each is given
a multiplicative factor on the odds, shrunk towards its team's (and the team's
towards 1, the company): a Poisson-gamma empirical-Bayes ratio ``(won + k *
parent) / (expected + k)`` with ``k = prior_strength``. The model and the
factors weigh every snapshot row alike (1/13, so ``k`` is in deals of a
quarter): weighing each deal once in one and each row in the other tilts every
factor the same way and biases the whole forecast. A won deal books its amount
as recorded on the as-of date; where the history shows amounts changing before
the close (5% of won deals or more), times the ratio of what the won deals of
its stage booked to their amount at the snapshot (``amounts='ratio'``, the
default; ``'recorded'`` never scales).

*New business.* Deals created after the as-of date and won before quarter end
do not exist yet. The weekly series of the amounts won within their creation
quarter, by creation week (13 weeks a quarter, the last days folded into week
13), is forecast with Holt-Winters exponential smoothing (statsmodels, additive
season of 13 weeks) and with the seasonal-naive forecast (the same week of the
last quarter). Both are scored by rolling origin on the last quarters of the
history, on the quantity that matters (the sum from each week to quarter end);
the one with the lower mean absolute error is used, and ``new_business_model_``
says which. Its uncertainty is a compound Poisson: a gamma-mixed Poisson number
of deals with sizes drawn from the historical new-business deals, the gamma's
variance set so that the total variance matches the rolling-origin errors.
Each new deal goes to a rep drawn by the reps' historical new-business shares
(smoothed so new reps get some).

*Monte Carlo.* Each open deal is won or not in each of ``n_draws`` draws
(vectorised numpy, seeded), the new business is drawn as above, and each rep's
bookings still to come are multiplied by shocks: a common one (a good or bad
quarter for everyone) and the uncertain split among teams and among a team's
reps. The draws are summed per rep, and the rep draws are summed per team,
region and company, so the hierarchy is coherent in every draw. Expected
bookings, P10 / P50 / P90 and P(bookings >= quota) come from the draws.
(Pipeline coverage has one definition, :func:`workbench.kpis.pipeline_coverage`.)
The fan chart's paths (:meth:`QuotaForecast.paths`) spread each draw's
bookings still to come over the rest of the quarter along the history's timing.

*Calibration.* How wide the draws must be is measured out of sample
(:mod:`.calibration`): the model is fitted at the start of each of the last
``calibration_quarters`` complete quarters and asked, each week, what each rep
would still book; the squared errors, by week of quarter and level, fix the
factor on the deals' own variance and the shocks' sizes (method of moments).
The same past cases decide, per week, whether combining the model's company
number with the run rate and the weighted pipeline beat the model on quarters
left out, and with which weights; the forecast then says which method
produced its number (:attr:`QuotaForecast.method`). The past forecasts are
then drawn again with this calibration: where each rep's actual fell in its
draws recalibrates the reps' P10..P90 (quantile recalibration) and, read at
the quota, their P(hit quota), so that the two agree. The company's and the
teams' shocks carry the uncertainty of a spread measured on a few quarters
(each draw takes its own size from the measurement's posterior: a Student t,
not a normal), and the factor on the deals' variance stays within a factor of
4 of their own variance either way. With fewer than two past quarters the
spread is measured in sample and nothing is combined or rescaled.

*Baselines* (:meth:`QuotaForecast.baselines`), as a CRM computes them: the
*weighted pipeline* (closed so far + each open deal due this quarter, at its
recorded amount times its stage's historical rate of winning in the rest of
the quarter; :mod:`.baselines`), with a P(hit quota) from a normal distribution
around it whose spread is its own historical error at that level and week of
quarter; and the *run rate* (bookings so far scaled to the whole quarter).
"""

from .backtest import Backtest, backtest_quarters, reliability_table, score
from .estimator import QuotaForecaster
from .new_business import NewBusinessModel, fit_new_business
from .results import QuotaForecast
from .simulation import Simulation, shock_factors, simulate_new_business, simulate_pipeline
from .win_model import forecast_states

__all__ = ["QuotaForecaster", "QuotaForecast", "Backtest", "backtest_quarters", "reliability_table", "score",
           "Simulation", "simulate_pipeline", "shock_factors", "simulate_new_business", "NewBusinessModel", "fit_new_business",
           "forecast_states"]
