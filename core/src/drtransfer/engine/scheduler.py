"""The parent's scheduler: wires the run together and routes every report to the part that handles it.

Flow per run: (1) PrepareTasks sweep unfinished multipart uploads once per (endpoint, bucket) and list
each target root the plan did not bring a listing for (all prepares finish before any upload starts, so a
sweep never aborts one of ours);
(2) operations start as OpTasks, models served round-robin; a large object's parts go out as PartTasks,
are verified together and completed (:mod:`~drtransfer.engine.attempts`); (3) when all other operations of
a model succeeded its commit operations run, one at a time, in order; (4) an AuditTask lists the target
root once and the model is ``ok`` only when everything it wrote is there (:mod:`~drtransfer.engine.lifecycle`).
The loop and its bounds are :mod:`~drtransfer.engine.dispatch`; the end of a failed or interrupted run is
:mod:`~drtransfer.engine.cleanup`. The tasks run wherever the :class:`~drtransfer.engine.executor.Executor`
runs them: the scheduler talks to nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from drtransfer.endpoints import Endpoint
from drtransfer.engine.attempts import Attempts
from drtransfer.engine.cleanup import Terminated, clean_up_run, note_last_reports, signals_ignored, sigterm_raises
from drtransfer.engine.dispatch import Dispatcher, Item
from drtransfer.engine.executor import Executor
from drtransfer.engine.lifecycle import Lifecycle, ModelState, new_model
from drtransfer.engine.local_executor import LocalExecutor
from drtransfer.engine.messages import (
    AbortDone,
    AbortTask,
    AuditTask,
    ClientRetried,
    OpDone,
    PrepareTask,
    ProbeTask,
    Progress,
    RemoveTask,
    Report,
    TaskFailed,
    UploadRef,
    UploadStarted,
    WorkersLost,
)
from drtransfer.engine.outage import task_endpoints
from drtransfer.engine.settings import EngineSettings
from drtransfer.errors import Interrupted, TransferError
from drtransfer.operations import ModelPlan, ModelResult

log = logging.getLogger("drtransfer.engine")


class Scheduler:
    def __init__(
        self,
        plans: Sequence[ModelPlan],
        endpoints: Mapping[str, Endpoint],
        settings: EngineSettings,
        subscribers: Sequence[Any],
        executor: Executor | None = None,
    ) -> None:
        self.plans = list(plans)
        self.endpoints = dict(endpoints)
        self.settings = settings
        self.subscribers = list(subscribers)
        self.models = [new_model(i, plan, self.endpoints) for i, plan in enumerate(self.plans)]
        self.executor: Executor = executor if executor is not None else LocalExecutor()
        self.placement = {i: plan.node for i, plan in enumerate(self.plans) if plan.node}
        self.open_uploads: dict[str, UploadRef] = {}
        self.worker_deaths = 0
        self.dispatch = Dispatcher(self.executor, settings, self.models, self._model_item)
        self.lifecycle = Lifecycle(self.models, settings, self.dispatch, self.notify)
        self.attempts = Attempts(
            self.models, self.endpoints, settings, self.dispatch, self.lifecycle, self.notify, self.open_uploads
        )

    def notify(self, method: str, *args: Any, **kwargs: Any) -> None:
        for subscriber in self.subscribers:
            try:
                getattr(subscriber, method)(*args, **kwargs)
            except Exception:  # a subscriber must never break a transfer
                log.exception("transfer subscriber %r failed in %s", subscriber, method)

    def run(self) -> list[ModelResult]:
        self.notify("on_start", self.plans)
        interrupted = False
        with sigterm_raises():
            try:
                self.executor.start(self.endpoints, self.settings, self.placement)
                self.lifecycle.start()
                self.dispatch.run(self._all_done, self._handle)
            except (KeyboardInterrupt, Terminated):
                interrupted = True
            finally:
                self._shutdown(interrupted)
        if interrupted:
            raise Interrupted()
        return [m.result or self.lifecycle.result(m) for m in self.models]

    def _all_done(self) -> bool:
        return self.lifecycle.all_done and self.dispatch.idle

    def _model_item(self, model: ModelState) -> Item | None:
        """The next task of ``model``: one it has ready, else the start of its next operation."""
        if model.ready:
            return model.ready.popleft()
        while (state := self.lifecycle.next_operation(model)) is not None:
            item = self.attempts.start(model, state)
            if item is not None:
                return item
        return None

    # ---- reports -------------------------------------------------------------------------------------

    def _handle(self, report: Report) -> None:
        if isinstance(report, Progress):
            self.attempts.on_progress(report)
            return
        if isinstance(report, ClientRetried):
            self.attempts.on_client_retried(report)
            return
        if isinstance(report, UploadStarted):
            self.open_uploads[report.upload.upload_id] = report.upload
            return
        if isinstance(report, WorkersLost):
            self._workers_lost(report.count, report.task_ids)
            return
        task_id = getattr(report, "task_id", None)
        if task_id is None:
            return  # WorkerStopped
        entry = self.dispatch.finished(task_id)
        if entry is None:
            return  # a task we gave up on (lost worker)
        if isinstance(report, OpDone) and report.progress and entry.model >= 0:
            self.attempts.on_progress(Progress(entry.model, entry.op, report.progress))  # as if sent alone
        task = entry.task
        if not isinstance(report, TaskFailed) and not (isinstance(report, AbortDone) and not report.ok):
            self.dispatch.health.ok(task_endpoints(task))  # wakes what waits for these endpoints
        if isinstance(task, PrepareTask):
            self.lifecycle.on_prepare(task, report)
        elif isinstance(task, ProbeTask):
            self.attempts.on_probe(task, report)
        elif isinstance(task, RemoveTask):
            self.lifecycle.on_remove(task, report)
        elif isinstance(task, AuditTask):
            self.lifecycle.on_audit(task, report)
        elif isinstance(task, AbortTask):
            if isinstance(report, AbortDone) and report.ok:
                self.open_uploads.pop(task.upload.upload_id, None)
            elif isinstance(report, TaskFailed | AbortDone):
                log.warning("could not abort an upload yet: %s", report.error)
        else:
            state = self.models[entry.model].ops[entry.op]
            if entry.generation != state.generation or state.result is not None:
                self.attempts.on_stale(report)
                return
            self.attempts.on_report(state, task, report)

    def _workers_lost(self, count: int, task_ids: tuple[int, ...] | None) -> None:
        self.worker_deaths += count
        if self.worker_deaths > 2 * max(1, self.settings.processes):
            raise TransferError(
                "Worker processes keep dying (see the messages above); with the spawn or forkserver "
                "start method, the main script must guard its code with if __name__ == '__main__'."
            )
        for task_id in list(self.dispatch.inflight) if task_ids is None else task_ids:
            self._handle(TaskFailed(task_id, "A worker process died; the task is retried.", retryable=True, rewind=0))

    # ---- the end -------------------------------------------------------------------------------------

    def _shutdown(self, interrupted: bool) -> None:
        with signals_ignored(interrupted):
            last = self.executor.stop(cancel=interrupted or not self._all_done())
            note_last_reports(last, self.dispatch.inflight, self.open_uploads)
            clean_up_run(self.endpoints, self.settings, self.lifecycle, self.open_uploads, interrupted=interrupted)


def run(
    plans: Sequence[ModelPlan],
    endpoints: Mapping[str, Endpoint],
    settings: EngineSettings,
    subscribers: Sequence[Any],
    executor: Executor | None = None,
) -> list[ModelResult]:
    """Run ``plans`` on ``executor`` (None: the local one)."""
    return Scheduler(plans, endpoints, settings, subscribers, executor).run()
