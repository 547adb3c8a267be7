"""``python -m server.evaluation ...`` = ``funnelrec eval ...``."""
from .cli import eval_cmd

eval_cmd(prog_name="python -m server.evaluation")
