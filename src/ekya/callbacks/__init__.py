"""Per-window callbacks (the ``callbacks`` config group): tracking, checkpoints, profiling mode, schedules, summary.

A callback is one class with before/after hooks (``ekya.callbacks.Callback``, defined beside the window
loop that calls it, in ``ekya.execution.hooks``) and one YAML file in ``conf/callbacks/`` naming it with
``_target_``; the window loop calls every configured callback.
"""

from ekya.execution.hooks import Callback, RunContext

__all__ = ["Callback", "RunContext"]
