"""From a model's specification to its fitted, drawn and scored result, cached; convergence, fits tables, exact checks."""
