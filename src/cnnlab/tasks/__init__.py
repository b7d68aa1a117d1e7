"""Tasks: the only code that knows a task end to end. One folder per task, one registration line here.

Adding a task means adding ``tasks/<task>/`` (with a ``TASK`` entry, see :class:`cnnlab.tasks.base.Task`)
and ``models/<task>/``, and one line below; the CLI, server and exporter read :data:`TASKS`.
"""

from cnnlab.tasks import classify, detect, embed, segment, sequence
from cnnlab.tasks.base import TASKS, PredictOptions, Task, task_of

for _task in (
    classify.TASK,
    segment.TASK,
    detect.TASK,
    embed.TASK,
    sequence.TASK,
):  # the registration line: one entry per task
    TASKS.add(_task.name, _task)

__all__ = ["TASKS", "PredictOptions", "Task", "task_of"]
