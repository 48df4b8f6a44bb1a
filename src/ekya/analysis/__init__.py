"""Analysis of tracked runs: MLflow runs into pandas, and the paper's figures drawn with seaborn."""

from ekya.analysis.studies import STUDIES, PaperValue, Study
from ekya.analysis.table import RunTable, load_table

__all__ = ["STUDIES", "PaperValue", "RunTable", "Study", "load_table"]
