"""``logpilot dev``: the Dagster webserver and daemon over one shared code server, with a prompt backfill tick.

What ``dagster dev`` / ``dg dev`` start, with one difference: Dagster's backfill daemon sleeps a fixed 30 s
between ticks (``DEFAULT_DAEMON_INTERVAL_SECONDS``, no setting), so a backfill launched from the UI waited
15 s on average, up to 30 s, before its first run was even queued. Here the daemon process runs the same
daemons with the backfill loop ticking every :data:`BACKFILL_TICK_SECONDS`. ``dagster dev`` is not invoked,
so no ``SupersessionWarning`` is printed either.

    python -m logpilot_dagster.dev_server daemon --instance-ref REF -w WORKSPACE   (started by :func:`serve`)
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

#: Seconds between two backfill daemon ticks (Dagster's own loop: 30).
BACKFILL_TICK_SECONDS = 1.0


def _prompt_backfill_daemon(settings):
    """A ``BackfillDaemon`` whose loop ticks every :data:`BACKFILL_TICK_SECONDS`."""
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._daemon.daemon import BackfillDaemon, SpanMarker
    from dagster._daemon.utils import DaemonErrorCapture

    class PromptBackfillDaemon(BackfillDaemon):
        def core_loop(self, workspace_process_context, shutdown_event):
            futures: dict = {}
            while True:
                yield SpanMarker.START_SPAN
                try:
                    yield from execute_backfill_iteration(
                        workspace_process_context, self._logger, threadpool_executor=self._threadpool_executor,
                        backfill_futures=futures, submit_threadpool_executor=self._submit_threadpool_executor)
                except Exception:
                    yield DaemonErrorCapture.process_exception(
                        exc_info=sys.exc_info(), logger=self._logger, log_message="BackfillDaemon caught an error")
                yield SpanMarker.END_SPAN
                shutdown_event.wait(BACKFILL_TICK_SECONDS)
                yield None

    return PromptBackfillDaemon(settings=settings)


def _daemons(instance):
    from dagster._daemon.controller import create_daemons_from_instance
    from dagster._daemon.daemon import BackfillDaemon

    return [_prompt_backfill_daemon(instance.get_backfill_settings()) if isinstance(d, BackfillDaemon) else d
            for d in create_daemons_from_instance(instance)]


def run_daemon(instance_ref: str, workspace: str, shutdown_pipe: int | None) -> None:
    """The body of ``dagster-daemon run``, with the prompt backfill daemon."""
    from contextlib import ExitStack

    import dagster as dg
    from dagster._core.instance import InstanceRef
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._daemon.controller import daemon_controller_from_instance
    from dagster._serdes import deserialize_value
    from dagster._utils.interrupts import capture_interrupts
    from dagster_shared.ipc import interrupt_on_ipc_shutdown_message

    try:
        with ExitStack() as stack:
            if shutdown_pipe is not None:
                stack.enter_context(interrupt_on_ipc_shutdown_message(shutdown_pipe))
            stack.enter_context(capture_interrupts())
            instance = stack.enter_context(dg.DagsterInstance.from_ref(deserialize_value(instance_ref, InstanceRef)))
            controller = stack.enter_context(daemon_controller_from_instance(
                instance, workspace_load_target=WorkspaceFileTarget(paths=[workspace]), gen_daemons=_daemons,
                code_server_log_level="warning"))
            controller.check_daemon_loop()
    except KeyboardInterrupt:
        return


@contextmanager
def _shared_code_server(instance, workspace: Path) -> Iterator[Path]:
    """One code server for webserver and daemon (as ``dagster dev``), announced in a temporary workspace file."""
    import yaml
    from dagster._cli.proxy_server_manager import ProxyServerManager
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with ProxyServerManager(instance=instance, workspace_load_target=WorkspaceFileTarget(paths=[str(workspace)]),
                            code_server_log_level="warning") as manager, tempfile.TemporaryDirectory() as tmp:
        shared = Path(tmp) / "workspace.yaml"
        shared.write_text(yaml.dump({"load_from": manager.get_code_server_specs()}))
        yield shared


def serve(workspace: Path, host: str, port: int) -> int:
    """Webserver + daemon on ``DAGSTER_HOME``'s instance until interrupted (Ctrl-C or SIGTERM)."""
    import dagster as dg
    from dagster._serdes import serialize_value
    from dagster_shared.ipc import get_ipc_shutdown_pipe, open_ipc_subprocess, send_ipc_shutdown_message

    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    children: list[tuple[subprocess.Popen, int]] = []
    try:
        with dg.DagsterInstance.get() as instance, _shared_code_server(instance, workspace) as shared:
            ref = serialize_value(instance.get_ref())
            commands: Sequence[list[str]] = (
                [sys.executable, "-m", "dagster_webserver", "-h", host, "-p", str(port), "--instance-ref", ref,
                 "-w", str(shared), "--shutdown-pipe"],
                [sys.executable, "-m", "logpilot_dagster.dev_server", "daemon", "--instance-ref", ref,
                 "-w", str(shared), "--shutdown-pipe"],
            )
            for command in commands:
                read_fd, write_fd = get_ipc_shutdown_pipe()
                children.append((open_ipc_subprocess([*command, str(read_fd)], pass_fds=[read_fd]), write_fd))
            try:
                while all(child.poll() is None for child, _ in children):
                    time.sleep(2)
                failed = next(child for child, _ in children if child.poll() is not None)
                print(f"{failed.args[2]} exited with {failed.returncode}", file=sys.stderr)
                return 1
            except KeyboardInterrupt:
                return 0
            finally:
                for child, write_fd in children:
                    if child.poll() is None:
                        send_ipc_shutdown_message(write_fd)
                for child, _ in children:
                    try:
                        child.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        child.kill()
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m logpilot_dagster.dev_server")
    parser.add_argument("role", choices=["daemon"])
    parser.add_argument("--instance-ref", required=True)
    parser.add_argument("-w", "--workspace", required=True)
    parser.add_argument("--shutdown-pipe", type=int)
    args = parser.parse_args(argv)
    run_daemon(args.instance_ref, args.workspace, args.shutdown_pipe)


if __name__ == "__main__":
    main()
