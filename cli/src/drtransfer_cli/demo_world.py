"""The demo's world: two SeaweedFS servers on 127.0.0.1 (DRfC's MinIO and the upload target), three
seeded DRfC runs and the DRfC files that describe them, kept in one directory.

A kept directory can be served again: the servers restart on their saved ports and data, and the DRfC
files are rewritten for them, so ``drtransfer demo --serve --keep DIR`` brings back the same world.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from drtransfer.locals3 import SeaweedServer
from drtransfer.samples import DrfcFiles, seed_model, write_drfc_config

DEMO_RUNS = (  # run id, model prefix, network, checkpoints
    ("0", "rl-deepracer-sagemaker", "shallow", (3, 4, 5)),
    ("1", "fast-lane-ppo", "standard", (10, 11, 12)),
    ("2", "deep-reinvent", "deep", (20, 21, 22, 23)),
)
LOCAL_BUCKET, UPLOAD_BUCKET = "bucket", "upload-bucket"
STATE_FILE = "demo.json"  # the servers' ports, so a restart finds the same world


@dataclass
class DemoWorld:
    root: Path
    local: SeaweedServer
    upload: SeaweedServer
    files: DrfcFiles
    restarted: bool

    @property
    def drfc_dir(self) -> Path:
        return self.root / "drfc"

    def shell_file(self) -> Path:
        """``source`` it to make a shell a DRfC shell against this world (run 0 activated)."""
        path = self.drfc_dir / "demo-shell.env"
        lines = [f"export {name}={value}" for name, value in self.files.environ.items()]
        lines += [
            f"export DR_DIR={self.drfc_dir}",
            f"export DR_CONFIG={self.files.run_files[0]}",
            f"cd {self.drfc_dir}",
        ]
        path.write_text("\n".join(lines) + "\n")
        return path


@contextmanager
def demo_world(root: Path, *, keep: bool, log: Callable[[str], None]) -> Iterator[DemoWorld]:
    """Start (or restart from ``root``) the world; the servers stop when the block ends."""
    state_path = root / STATE_FILE
    saved = json.loads(state_path.read_text()) if state_path.is_file() else None
    with ExitStack() as stack:
        servers = []
        for name in ("local-s3", "upload-s3"):
            server = SeaweedServer(root / name, keep_data=keep, ports=dict(saved[name]) if saved else {})
            servers.append(stack.enter_context(server))
        local, upload = servers
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps({"local-s3": local.ports, "upload-s3": upload.ports}))
        log(f"  local (MinIO stand-in): {local.url}\n  upload target:          {upload.url}")
        if saved is None:
            local.create_bucket(LOCAL_BUCKET)
            upload.create_bucket(UPLOAD_BUCKET)
            for run_id, prefix, network, numbers in DEMO_RUNS:
                seeded = seed_model(local.client(), LOCAL_BUCKET, prefix, checkpoints=numbers, network=network)
                log(
                    f"  seeded run {run_id}: s3://{LOCAL_BUCKET}/{prefix}/ ({network} network, "
                    f"{len(numbers)} checkpoints, {seeded.total_bytes / 2**20:.1f} MiB)"
                )
        files = write_drfc_config(
            root / "drfc",
            local_url=local.url,
            local_keys=(local.access_key, local.secret_key),
            local_bucket=LOCAL_BUCKET,
            upload_url=upload.url,
            upload_keys=(upload.access_key, upload.secret_key),
            upload_bucket=UPLOAD_BUCKET,
            runs=[(run_id, prefix, f"{prefix}-upload") for run_id, prefix, _, _ in DEMO_RUNS],
        )
        yield DemoWorld(root, local, upload, files, restarted=saved is not None)
