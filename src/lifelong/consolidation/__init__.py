"""How to keep what was learned: consolidators, registered in :data:`CONSOLIDATORS`.

=============  =================================================================
name           what it does
=============  =================================================================
ewc            quadratic penalty weighted by each past task's Fisher (Kirkpatrick et al. 2017)
online-ewc     one running Fisher with decay gamma (Schwarz et al. 2018, Progress & Compress)
si             importance from the path integral of the loss (Zenke et al. 2017)
l2             L2 pull towards the previous task's weights
lwf            distillation from the previous model on current data (Li & Hoiem 2016)
agem           gradient projection against a memory reference gradient (Chaudhry et al. 2019)
der / der++    logit replay (+ label replay) from memory (Buzzega et al. 2020)
hft            each task trains a seeded random half of the parameter tensors (HFT, Hui et al. 2024)
freeze         freeze named modules from some task on (e.g. the backbone)
lora           one LoRA adapter per task, merged or kept (language models; lifelong/hf/lora.py)
average        the model becomes the mean of the task-end weights (weight averaging of task checkpoints)
magmax         per weight, the task vector of largest magnitude (MagMax, Marczak et al. 2024)
ema            exponential moving average of the weights, swapped in at each task end
slow-learner   per-module learning-rate multipliers and frozen embeddings (SLCA's slow learner)
=============  =================================================================

All of them are model-agnostic: they run the model through
``ctx.objective`` (classification or causal language modelling) and touch
only parameters with ``requires_grad``.

Adding a method is one file: subclass :class:`Consolidator`, decorate it with
``@CONSOLIDATORS.register("name")``, declare ``needs_memory`` and the
attributes its checkpoint saves (``state_attrs``), and import the class below.
Its strategy (``strategy: name``) is derived from the registry
(:mod:`lifelong.strategies`), with a replay memory when ``needs_memory``.
``lora`` lives in :mod:`lifelong.hf.lora` (``from lifelong.hf import LoRAPerTask``)
and is loaded when its name is first asked for.
"""

from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS

# every consolidator, one line per method file (the import registers it)
from lifelong.consolidation.agem import AGEM
from lifelong.consolidation.average import Average
from lifelong.consolidation.der import DER
from lifelong.consolidation.der_pp import DERPlusPlus
from lifelong.consolidation.ema import EMA
from lifelong.consolidation.ewc import EWC
from lifelong.consolidation.freeze import Freeze
from lifelong.consolidation.hft import HFT
from lifelong.consolidation.l2 import L2
from lifelong.consolidation.lwf import LwF
from lifelong.consolidation.magmax import MagMax
from lifelong.consolidation.online_ewc import OnlineEWC
from lifelong.consolidation.si import SI
from lifelong.consolidation.slow_learner import SlowLearner

#: DER++ by the name configs use
DERPP = DERPlusPlus

__all__ = ["Consolidator", "CONSOLIDATORS", "AGEM", "Average", "DER", "DERPlusPlus", "DERPP", "EMA", "EWC", "Freeze",
           "HFT", "L2", "LwF", "MagMax", "OnlineEWC", "SI", "SlowLearner"]
