"""Checkpoint selectors through the plugin host: ``last`` (core), ``best``, ``step:N``, ``metric:NAME``
(built-in checkpoints plugin), on generated models and on the real DRfC TrainingMetrics.json."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import drtransfer_plugins.checkpoints as checkpoints_plugin
from drtransfer.errors import ConfigError, ModelError
from drtransfer.inventory import ModelInventory
from drtransfer.plugins import PluginHost, get_plugin_manager
from drtransfer.samples import checkpoint_name
from tests.plugins.factory import REAL_TRAINING_METRICS, index_entry, make_inventory, metrics_json

METRIC_NAMES = ("progress", "reward", "complete-laps", "laptime")


@pytest.fixture(scope="module")
def host() -> PluginHost:
    """Only the built-in selectors and core's fallback (no installed third-party plugin)."""
    return get_plugin_manager(load_entrypoints=False, extra_plugins=[("checkpoints", checkpoints_plugin)])


def select(host: PluginHost, expression: str, model: ModelInventory) -> tuple[int, str]:
    selection = host.select_checkpoint(expression, model, model.run)
    return selection.checkpoint.number, selection.explanation


# ---- an independent oracle for the real metrics file ----------------------------------------------


def oracle_scores(raw: bytes) -> dict[int, dict[str, float]]:
    """Scores per checkpoint from the raw JSON, mapping evaluation phases to checkpoints by counting
    phases (the k-th evaluation phase, 0-based, follows training iteration k and scores checkpoint k),
    without deepracer-utils' episode arithmetic."""
    rows = json.loads(raw)["metrics"]
    phases: list[tuple[str, list[dict[str, Any]]]] = []
    for row in rows:
        if phases and phases[-1][0] == row["phase"]:
            phases[-1][1].append(row)
        else:
            phases.append((row["phase"], [row]))
    scores: dict[int, dict[str, float]] = {}
    iteration = -1
    for phase, episodes in phases:
        if phase == "training":
            iteration += 1
            continue
        progress = [e["completion_percentage"] for e in episodes]
        scores[iteration] = {
            "progress": sum(progress) / len(progress),
            "reward": sum(e["reward_score"] for e in episodes) / len(episodes),
            "complete-laps": sum(1 for p in progress if p >= 100),
            "laptime": -sum(
                e["elapsed_time_in_milliseconds"] / 1000 if e["completion_percentage"] >= 100 else 999.999
                for e in episodes
            )
            / len(episodes),  # negated: higher is better everywhere in the oracle
        }
    return scores


def oracle_choice(raw: bytes, metric: str, complete: list[int]) -> int:
    scores = oracle_scores(raw)
    candidates = [n for n in complete if n in scores]
    best = max(scores[n][metric] for n in candidates)
    return max(n for n in candidates if abs(scores[n][metric] - best) < 1e-9)  # ties: the later one


# ---- core's `last` and the plugin's `best` / `step:N` -----------------------------------------


def test_hook_drtransfer_select_checkpoint(host: PluginHost) -> None:
    model = make_inventory((1, 2, 10, 11), best=2)
    assert select(host, "last", model) == (11, f"last: {checkpoint_name(11)} (avg_eval_metric 40.0)")
    assert select(host, "best", model) == (2, f"best: {checkpoint_name(2)} (avg_eval_metric 80.0)")
    assert select(host, "step:10", model) == (10, f"step:10: {checkpoint_name(10)}")
    assert select(host, "  step:1 ", model)[0] == 1  # surrounding blanks are not part of the expression
    # the index entry written to the target is the source's own when the index names the checkpoint
    assert host.select_checkpoint("best", model, model.run).index_entry == index_entry(2, 80.0)


def test_best_with_a_null_metric_and_the_legacy_field(host: PluginHost) -> None:
    model = make_inventory((3, 4), index={"best_checkpoint": index_entry(3, None), "last_checkpoint": None})
    assert select(host, "best", model) == (3, f"best: {checkpoint_name(3)} (avg_eval_metric n/a)")
    legacy = {"best_checkpoint": {"name": checkpoint_name(4), "avg_comp_pct": 50.0, "time_stamp": 1}}
    assert select(host, "best", make_inventory((3, 4), index=legacy))[1].endswith("(avg_eval_metric 50.0)")


def test_best_and_last_fail_when_the_index_lacks_them_or_their_files_are_gone(host: PluginHost) -> None:
    no_last = make_inventory((3, 4), index={"best_checkpoint": index_entry(3, 1.0), "last_checkpoint": None})
    with pytest.raises(ModelError, match=r"has no last_checkpoint entry"):
        host.select_checkpoint("last", no_last, no_last.run)
    deleted = make_inventory((1, 2, 3), best=2, missing={2: [".index"]})
    with pytest.raises(ModelError, match=rf"names {re.escape(checkpoint_name(2))}, but its files were deleted"):
        host.select_checkpoint("best", deleted, deleted.run)


def test_step_n_refuses_missing_and_incomplete_checkpoints(host: PluginHost) -> None:
    model = make_inventory((1, 2, 3), missing={3: ["pb"]})
    with pytest.raises(ModelError, match=r"Checkpoint 7 is not in .*complete checkpoints: 1, 2\)"):
        host.select_checkpoint("step:7", model, model.run)
    with pytest.raises(ModelError, match=r"Checkpoint 3 .* is incomplete: missing model_3.pb"):
        host.select_checkpoint("step:3", model, model.run)
    # the exact number, never DRfC's `1*` glob that also took 10, 11 ...
    assert select(host, "step:1", make_inventory((1, 10, 11)))[0] == 1


@pytest.mark.parametrize(
    "expression",
    ["step:x", "step:", "step:-1", "step:1.5", "metric:", "metric:speed", "metric:Progress"],
)
def test_a_malformed_expression_of_the_plugin_names_the_valid_forms(host: PluginHost, expression: str) -> None:
    model = make_inventory()
    with pytest.raises(ConfigError) as info:
        host.select_checkpoint(expression, model, model.run)
    message = str(info.value)
    assert f"Malformed checkpoint expression {expression!r}" in message
    assert "valid forms: best, step:N, metric:NAME" in message
    if expression.startswith("metric:"):
        assert "progress, reward, complete-laps, laptime" in message


def test_an_unknown_expression_lists_every_known_one(host: PluginHost) -> None:
    model = make_inventory()
    with pytest.raises(ConfigError) as info:
        host.select_checkpoint("no-such-selector-7f3a", model, model.run)
    message = str(info.value)
    assert message.startswith("Unknown checkpoint expression 'no-such-selector-7f3a'; known expressions: last: ")
    for form in ("last:", "best:", "step:N:", "metric:NAME:"):
        assert form in message
    assert message.count("\n") == 0


# ---- metric:NAME on the real TrainingMetrics.json -------------------------------------------------


@pytest.mark.parametrize("metric", METRIC_NAMES)
@pytest.mark.parametrize(
    "complete",
    [
        list(range(28)),  # every checkpoint of the session kept (27: trained, never evaluated)
        [9, 10, 11, 12],  # a DRfC-like retention window
        [0, 1, 2, 3],
        [4, 17, 19, 27],
    ],
)
def test_metric_on_the_real_training_metrics(host: PluginHost, metric: str, complete: list[int]) -> None:
    model = make_inventory(complete)
    number, explanation = select(host, f"metric:{metric}", model)
    assert number == oracle_choice(REAL_TRAINING_METRICS, metric, complete)
    assert explanation.startswith(f"metric:{metric}: {checkpoint_name(number)} (")
    assert "\n" not in explanation


def test_metric_picks_documented_checkpoints_of_the_real_fixture(host: PluginHost) -> None:
    """Facts read off the fixture: evaluations after iterations 15 and 22..26 are all at 100 % with
    2 complete laps (ties -> 26); the highest mean reward is 174 (iteration 26); the fastest all-complete
    evaluation is iteration 15 (13.457 s)."""
    model = make_inventory(range(28))
    assert select(host, "metric:progress", model)[0] == 26
    assert select(host, "metric:complete-laps", model) == (
        26,
        f"metric:complete-laps: {checkpoint_name(26)} (2 of 2 evaluation lap(s) complete; "
        "best of 27 evaluated complete checkpoint(s))",
    )
    assert select(host, "metric:reward", model)[1] == (
        f"metric:reward: {checkpoint_name(26)} (mean evaluation reward 174.0 over 2 episode(s); "
        "best of 27 evaluated complete checkpoint(s))"
    )
    assert select(host, "metric:laptime", model)[1] == (
        f"metric:laptime: {checkpoint_name(15)} (mean evaluation lap time 13.457 s over 2 episode(s); "
        "best of 27 evaluated complete checkpoint(s))"
    )


def test_metric_skips_incomplete_checkpoints(host: PluginHost) -> None:
    # 26 scores best on every metric but progress ties; without its .pb the next best complete one wins
    model = make_inventory(range(20, 28), missing={26: ["pb"], 25: [".meta"]})
    assert select(host, "metric:progress", model)[0] == 24
    assert select(host, "metric:reward", model)[0] == oracle_choice(
        REAL_TRAINING_METRICS, "reward", [20, 21, 22, 23, 24, 27]
    )


def test_metric_without_any_evaluated_complete_checkpoint(host: PluginHost) -> None:
    model = make_inventory((27, 28, 29), missing={29: [".index"]})
    with pytest.raises(ModelError) as info:
        host.select_checkpoint("metric:progress", model, model.run)
    message = str(info.value)
    assert "No complete checkpoint in s3://bucket/rl-deepracer-sagemaker/model/ was evaluated" in message
    assert "(evaluated: 0-26; complete: 27, 28)" in message
    assert "choose best, last or step:N instead" in message


def test_metric_without_training_metrics(host: PluginHost) -> None:
    model = make_inventory((1, 2), training_metrics=None)
    with pytest.raises(
        ModelError, match=r"needs s3://bucket/rl-deepracer-sagemaker/metrics/TrainingMetrics.json, which is missing"
    ):
        host.select_checkpoint("metric:reward", model, model.run)


@pytest.mark.parametrize("raw", [b"{not json", b'{"metrics": []}', b'{"version": 2.0}', b"[]"])
def test_metric_with_unreadable_training_metrics(host: PluginHost, raw: bytes) -> None:
    model = make_inventory((1, 2), training_metrics=raw)
    with pytest.raises(ModelError) as info:
        host.select_checkpoint("metric:progress", model, model.run)
    assert str(info.value).startswith(
        "s3://bucket/rl-deepracer-sagemaker/metrics/TrainingMetrics.json cannot be read as DeepRacer training metrics"
    )


def test_metric_selection_prints_nothing_on_stdout(host: PluginHost, capsys: pytest.CaptureFixture[str]) -> None:
    """deepracer-utils prints a summary when loading; --json output must stay clean."""
    select(host, "metric:progress", make_inventory((3, 4)))
    assert capsys.readouterr().out == ""


# ---- metric:NAME on generated metrics: ties, laptime, index entries ------------------------------


def test_metric_ties_go_to_the_later_checkpoint(host: PluginHost) -> None:
    same = [(100.0, 50.0, 12.0), (60.0, 30.0, 8.0)]
    raw = metrics_json({1: same, 2: same, 3: same, 4: [(10.0, 1.0, 1.0)]})
    model = make_inventory((1, 2, 3, 4), training_metrics=raw)
    for metric in METRIC_NAMES:
        assert select(host, f"metric:{metric}", model)[0] == 3, metric


def test_metric_laptime_is_lower_is_better_with_incomplete_laps_penalised(host: PluginHost) -> None:
    raw = metrics_json(
        {
            1: [(100.0, 10.0, 20.0), (100.0, 10.0, 20.0)],  # mean 20 s
            2: [(100.0, 10.0, 9.0), (99.0, 10.0, 9.0)],  # one incomplete: (9 + 999.999) / 2
            3: [(100.0, 10.0, 15.0), (100.0, 10.0, 16.0)],  # mean 15.5 s: the fastest
        }
    )
    model = make_inventory((1, 2, 3), training_metrics=raw)
    assert select(host, "metric:laptime", model) == (
        3,
        f"metric:laptime: {checkpoint_name(3)} (mean evaluation lap time 15.500 s over 2 episode(s); "
        "best of 3 evaluated complete checkpoint(s))",
    )
    assert (
        "1 incomplete counted as 999.999 s"
        in select(host, "metric:laptime", make_inventory((2,), training_metrics=raw))[1]
    )
    assert select(host, "metric:progress", model)[0] == 3  # 100 % ties with 1, the later wins; 2 is 99.5


def test_metric_checkpoint_zero_is_the_first_evaluation(host: PluginHost) -> None:
    raw = metrics_json({0: [(90.0, 9.0, 9.0)], 1: [(10.0, 1.0, 1.0)], 2: [(20.0, 2.0, 2.0)]})
    assert select(host, "metric:progress", make_inventory((0, 1, 2), training_metrics=raw))[0] == 0


def test_metric_index_entry_reuses_or_synthesises(host: PluginHost) -> None:
    raw = metrics_json({1: [(30.0, 3.0, 3.0)], 2: [(70.0, 7.0, 7.0)], 3: [(50.0, 5.0, 5.0)]})
    named = make_inventory((1, 2, 3), best=2, last=3, training_metrics=raw)
    assert host.select_checkpoint("metric:progress", named, named.run).index_entry == index_entry(2, 80.0)
    unnamed = make_inventory((1, 2, 3), best=1, last=3, training_metrics=raw)
    entry = host.select_checkpoint("metric:reward", unnamed, unnamed.run).index_entry
    assert entry["name"] == checkpoint_name(2)
    assert entry["avg_eval_metric"] == 7.0
    assert isinstance(entry["time_stamp"], float)
