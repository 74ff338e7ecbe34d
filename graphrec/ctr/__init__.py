"""CTR prediction: field schema, backbones (FM, DeepFM, DCN, IPNN), and feature / dimension search.

* :class:`CTRSchema` - categorical fields with a min-count OOV id, Criteo log-binned numerics.
* :class:`CTRClassifier` - a backbone trained with early stopping on validation AUC.
* :class:`OptFS` - feature-value gates learned by continuation, rewind and retrain (Lyu et al., WWW 2023).
* :class:`DNIS` - soft dimension selection per frequency block, magnitude pruning to a parameter budget
  (Cheng, Shen, Huang, arXiv 2006.04466).
"""
from graphrec.ctr.backbones import BACKBONES, CTRNet, fm_pairwise
from graphrec.ctr.dnis import DNIS
from graphrec.ctr.estimators import CTRClassifier
from graphrec.ctr.optfs import OptFS
from graphrec.ctr.schema import CTRSchema, log_bin

__all__ = ["BACKBONES", "CTRClassifier", "CTRNet", "CTRSchema", "DNIS", "OptFS", "fm_pairwise", "log_bin"]

from graphrec.ctr import _registration  # noqa: E402,F401  (estimator contract entries)
