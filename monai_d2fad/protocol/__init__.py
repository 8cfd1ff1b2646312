"""The benchmark protocol: leave-one-task-out training, K-shot evaluation of D²4FAD and baselines, tables, figures.

Run ``python -m monai_d2fad.protocol --help``.
"""

from monai_d2fad.protocol.config import BASELINES, ProtocolConfig
from monai_d2fad.protocol.results import COLUMNS, ResultsFile, results_table
from monai_d2fad.protocol.runner import run_protocol
from monai_d2fad.protocol.variants import ABLATIONS

__all__ = ["ABLATIONS", "BASELINES", "COLUMNS", "ProtocolConfig", "ResultsFile", "results_table", "run_protocol"]
