"""DRfC's ``dr-upload-model`` flow (deepracer-domain §3.3), one model after the other, with awscli v1.

Written from the specification (not from DRfC's code) to measure the flow users run today: per model,
wipe a work dir, download the reward function, metadata, hyperparameters and metrics, the checkpoint
index, then the chosen checkpoint's files with ``aws s3 sync --exclude/--include``, write the rewritten
index, ``.coach_checkpoint`` and ``training_params.yaml``, and upload everything with ``aws s3``; each
step is its own ``aws`` process, as in the shell script. (``training_params.yaml`` is written here
rather than by a separate ``python3 prepare-config.py`` process, which slightly favours the flow.)

usage: drfc_flow.py MANIFEST.json
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def main(manifest_path: str) -> int:
    manifest = json.loads(Path(manifest_path).read_text())
    for model in manifest["models"]:
        upload_model(manifest, model["src"], model["dst"])
    return 0


def upload_model(manifest: dict[str, Any], src: str, dst: str) -> None:
    source, target = manifest["source"], manifest["target"]
    work = Path(manifest["stage"]) / "upload"
    shutil.rmtree(work, ignore_errors=True)  # WORK_DIR=$DR_DIR/tmp/upload/ is wiped
    (work / "model").mkdir(parents=True)

    def aws(server: dict[str, str], *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=server["access_key"], AWS_SECRET_ACCESS_KEY=server["secret_key"],
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=manifest["aws_config"],
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        # The script does not check aws exit codes; this measurement does, so a broken run is not timed.
        subprocess.run([manifest["aws"], "--endpoint-url", server["url"], "s3", *args], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    s3_src = f"s3://{source['bucket']}/{src}"
    s3_dst = f"s3://{target['bucket']}/{dst}"
    # Step 2: reward function, metadata, hyperparameters, metrics (all mandatory).
    aws(source, "cp", f"{s3_src}/reward_function.py", str(work / "reward_function.py"))
    aws(source, "cp", f"{s3_src}/model/model_metadata.json", str(work / "model_metadata.json"))
    aws(source, "cp", f"{s3_src}/ip/hyperparameters.json", str(work / "hyperparameters.json"))
    aws(source, "sync", f"{s3_src}/metrics", str(work / "metrics"))
    # Steps 3-4: the checkpoint index, and the checkpoint it names as last.
    aws(source, "cp", f"{s3_src}/model/deepracer_checkpoints.json", str(work / "model" / "deepracer_checkpoints.json"))
    index = json.loads((work / "model" / "deepracer_checkpoints.json").read_text())
    entry = index["last_checkpoint"]
    number = entry["name"].split("_Step")[0]
    # Step 5: the checkpoint files (with the script's `N*` include pattern).
    aws(source, "sync", f"{s3_src}/model/", str(work / "model"), "--exclude", "*", "--include", f"{number}*",
        "--include", f"model_{number}.pb", "--include", "deepracer_checkpoints.json")
    # Step 6: rewritten index, metadata next to the model, .coach_checkpoint written with echo.
    (work / "model" / "deepracer_checkpoints.json").write_text(
        json.dumps({"last_checkpoint": entry, "best_checkpoint": entry})
    )
    shutil.copy(work / "model_metadata.json", work / "model" / "model_metadata.json")
    (work / "model" / ".coach_checkpoint").write_text(entry["name"] + "\n")
    # Step 7: training_params.yaml from the environment.
    (work / "training_params.yaml").write_text(
        f"SAGEMAKER_SHARED_S3_BUCKET: '{target['bucket']}'\nSAGEMAKER_SHARED_S3_PREFIX: '{dst}'\n"
        f"WORLD_NAME: 'reInvent2019_track'\nRACE_TYPE: 'TIME_TRIAL'\nAWS_REGION: 'us-east-1'\n"
    )
    # Step 9: the uploads, in the script's order.
    aws(target, "sync", str(work / "model"), f"{s3_dst}/model/")
    aws(target, "cp", str(work / "reward_function.py"), f"{s3_dst}/reward_function.py")
    aws(target, "sync", str(work / "metrics"), f"{s3_dst}/metrics/")
    aws(target, "cp", str(work / "training_params.yaml"), f"{s3_dst}/training_params.yaml")
    aws(target, "cp", str(work / "hyperparameters.json"), f"{s3_dst}/ip/hyperparameters.json")
    aws(target, "cp", str(work / "model_metadata.json"), f"{s3_dst}/model_metadata.json")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
