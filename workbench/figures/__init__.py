"""seaborn / matplotlib figures; every function returns its Figure so a notebook can restyle it."""
