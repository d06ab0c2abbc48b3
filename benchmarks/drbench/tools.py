"""Each tool of the comparison as the commands it runs for one workload, with its best documented settings.

A tool copies ``<source bucket>/<root>/`` to ``<fresh target bucket>/<root>/`` (``root`` holds the
workload's ``model-NN/`` prefixes), so every tool writes the same keys and one check verifies them all.
Tools that cannot talk to two endpoints at once (awscli, s5cmd) download to local disk and upload
again, which is how their users move data between two S3 services.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from drbench.provision import BENCH, Toolchain, clean_env
from drbench.workloads import Workload
from drtransfer.samples import write_drfc_config


@dataclass(frozen=True)
class Server:
    url: str
    access_key: str
    secret_key: str
    bucket: str

    def aws_env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}

    def as_json(self) -> dict[str, str]:
        return {"url": self.url, "access_key": self.access_key, "secret_key": self.secret_key, "bucket": self.bucket}


@dataclass
class RunContext:
    workload: Workload
    source: Server
    target: Server
    work: Path  # this run's own directory (configuration files, staging); removed after the run
    tools: Toolchain

    @property
    def root(self) -> str:
        return self.workload.root

    @property
    def stage(self) -> Path:
        return self.work / "stage"

    def manifest(self, aws_config: Path | None = None) -> Path:
        """The run described for the script-driven tools (DRfC's flow, the TransferManager ceiling)."""
        w = self.workload
        data = {
            "aws": self.tools.aws,
            "aws_config": str(aws_config) if aws_config else None,
            "source": self.source.as_json(),
            "target": self.target.as_json(),
            "models": [{"src": w.model_prefix(i), "dst": w.model_prefix(i)} for i in range(w.models)],
            "stage": str(self.stage),
        }
        path = self.work / "manifest.json"
        path.write_text(json.dumps(data, indent=2))
        path.chmod(0o600)
        return path


@dataclass(frozen=True)
class Step:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def _aws_config(ctx: RunContext, concurrency: int) -> Path:
    path = ctx.work / f"aws-config-c{concurrency}"
    path.write_text(
        "[default]\nregion = us-east-1\ns3 =\n"
        f"    max_concurrent_requests = {concurrency}\n    addressing_style = path\n"
    )
    return path


class Tool:
    name = ""
    label = ""
    peer = True  # False for our own tool and for the TransferManager reference

    def applies(self, workload: Workload) -> bool:
        return True

    def settings(self, workload: Workload) -> str:
        raise NotImplementedError

    def steps(self, ctx: RunContext) -> list[Step]:
        raise NotImplementedError


class DrTransfer(Tool):
    name, label, peer = "drtransfer", "deepracer-transfer", False

    def settings(self, workload: Workload) -> str:
        return "`drtransfer upload RUN_FILE... -f --no-progress`, one DRfC run file per model, default settings"

    def steps(self, ctx: RunContext) -> list[Step]:
        w = ctx.workload
        files = write_drfc_config(
            ctx.work / "drfc",
            local_url=ctx.source.url,
            local_keys=(ctx.source.access_key, ctx.source.secret_key),
            local_bucket=ctx.source.bucket,
            upload_url=ctx.target.url,
            upload_keys=(ctx.target.access_key, ctx.target.secret_key),
            upload_bucket=ctx.target.bucket,
            runs=[(str(i), w.model_prefix(i), w.model_prefix(i)) for i in range(w.models)],
        )
        argv = [ctx.tools.drtransfer, "upload", *map(str, files.run_files), "--system-env", str(files.system_env),
                "-f", "--no-progress"]
        return [Step(argv, clean_env(**files.environ))]


class Rclone(Tool):
    name, label = "rclone", "rclone copy"
    # rclone's docs: more --transfers/--checkers for many small files; --fast-list and --no-check-dest
    # save listing and HEAD requests against an empty destination; --s3-no-check-bucket skips bucket creation.
    COMMON = ("--fast-list", "--no-check-dest", "--s3-no-check-bucket")
    PER_WORKLOAD: ClassVar[dict[str, tuple[str, ...]]] = {
        "W1": ("--transfers", "8"),
        "W2": ("--transfers", "32", "--checkers", "32"),
        "W3": (),
        "W4": ("--transfers", "32", "--checkers", "32"),
    }

    def flags(self, workload: Workload) -> list[str]:
        return [*self.COMMON, *self.PER_WORKLOAD.get(workload.name, ())]

    def settings(self, workload: Workload) -> str:
        how = "server-side copy (one remote)" if workload.same_endpoint else "remote to remote, streamed"
        return f"`rclone copy {' '.join(self.flags(workload))}`, {how}"

    def steps(self, ctx: RunContext) -> list[Step]:
        env = clean_env(RCLONE_CONFIG=str(ctx.work / "rclone.conf"))
        (ctx.work / "rclone.conf").write_text("")
        remotes = {"SRC": ctx.source} if ctx.workload.same_endpoint else {"SRC": ctx.source, "DST": ctx.target}
        for name, server in remotes.items():
            env.update({
                f"RCLONE_CONFIG_{name}_TYPE": "s3", f"RCLONE_CONFIG_{name}_PROVIDER": "SeaweedFS",
                f"RCLONE_CONFIG_{name}_ENDPOINT": server.url, f"RCLONE_CONFIG_{name}_REGION": "us-east-1",
                f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": server.access_key,
                f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": server.secret_key,
                f"RCLONE_CONFIG_{name}_FORCE_PATH_STYLE": "true",
            })
        target = "src" if ctx.workload.same_endpoint else "dst"
        argv = [ctx.tools.rclone, "copy", f"src:{ctx.source.bucket}/{ctx.root}",
                f"{target}:{ctx.target.bucket}/{ctx.root}", *self.flags(ctx.workload)]
        return [Step(argv, env)]


class S5cmd(Tool):
    name, label = "s5cmd", "s5cmd cp"

    def settings(self, workload: Workload) -> str:
        if workload.same_endpoint:
            return "`s5cmd cp 's3://…/*' s3://…/`, server-side copy, defaults (256 workers)"
        return "`s5cmd cp` download to local disk, then `s5cmd cp` upload (one endpoint per call), defaults"

    def steps(self, ctx: RunContext) -> list[Step]:
        s5 = ctx.tools.s5cmd
        src, dst = ctx.source, ctx.target
        if ctx.workload.same_endpoint:
            argv = [s5, "--endpoint-url", src.url, "cp", f"s3://{src.bucket}/{ctx.root}/*", f"s3://{dst.bucket}/{ctx.root}/"]
            return [Step(argv, clean_env(**src.aws_env()))]
        return [
            Step([s5, "--endpoint-url", src.url, "cp", f"s3://{src.bucket}/{ctx.root}/*", f"{ctx.stage}/"],
                 clean_env(**src.aws_env())),
            Step([s5, "--endpoint-url", dst.url, "cp", f"{ctx.stage}/*", f"s3://{dst.bucket}/{ctx.root}/"],
                 clean_env(**dst.aws_env())),
        ]


class AwsCli(Tool):
    name, label = "awscli", "awscli v1 s3 cp"
    CONCURRENCY = 32  # awscli's documented knob (default 10); never slower here (s3-lab §3.1)

    def settings(self, workload: Workload) -> str:
        how = ("server-side copy" if workload.same_endpoint
               else "download to local disk, then upload (one endpoint per call)")
        return f"`aws s3 cp --recursive`, `max_concurrent_requests = {self.CONCURRENCY}`, {how}"

    def steps(self, ctx: RunContext) -> list[Step]:
        config = _aws_config(ctx, self.CONCURRENCY)
        src, dst = ctx.source, ctx.target
        base = [ctx.tools.aws, "s3", "cp", "--recursive", "--only-show-errors"]

        def env(server: Server) -> dict[str, str]:
            return clean_env(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE="/dev/null", **server.aws_env())

        if ctx.workload.same_endpoint:
            argv = [*base, "--endpoint-url", src.url, f"s3://{src.bucket}/{ctx.root}", f"s3://{dst.bucket}/{ctx.root}"]
            return [Step(argv, env(src))]
        return [
            Step([*base, "--endpoint-url", src.url, f"s3://{src.bucket}/{ctx.root}", str(ctx.stage)], env(src)),
            Step([*base, "--endpoint-url", dst.url, str(ctx.stage), f"s3://{dst.bucket}/{ctx.root}"], env(dst)),
        ]


class DrfcFlow(Tool):
    name, label = "drfc", "DRfC dr-upload-model flow"

    def settings(self, workload: Workload) -> str:
        return ("dr-upload-model's steps (domain §3.3) per model, one model after the other: `aws s3 cp`/`sync` "
                "downloads to a local work dir, then `aws s3` uploads; awscli defaults (as DRfC runs it)")

    def steps(self, ctx: RunContext) -> list[Step]:
        config = _aws_config(ctx, 10)
        manifest = ctx.manifest(config)
        return [Step([sys.executable, str(BENCH / "drbench" / "drfc_flow.py"), str(manifest)], clean_env())]


class TransferManagerCeiling(Tool):
    name, label, peer = "tm-ceiling", "s3transfer TransferManager (reference)", False

    def applies(self, workload: Workload) -> bool:
        return not workload.same_endpoint

    def settings(self, workload: Workload) -> str:
        return ("one tuned s3transfer `TransferManager` (10 threads, 8 MiB parts) in one process streaming every "
                "object from a GET body: issue 3's ceiling of one Python process")

    def steps(self, ctx: RunContext) -> list[Step]:
        manifest = ctx.manifest()
        return [Step([sys.executable, str(BENCH / "drbench" / "tm_ceiling.py"), str(manifest)], clean_env())]


TOOLS: tuple[Tool, ...] = (DrTransfer(), Rclone(), S5cmd(), AwsCli(), DrfcFlow(), TransferManagerCeiling())
BY_NAME = {tool.name: tool for tool in TOOLS}
