"""Retraining over a real ``driftline server --auth`` (SQLite and PostgreSQL): policies are
applied and cycles asked for and read over REST, through a remote workspace and through
the CLI; grants decide who may; ``approvals: N`` needs N people who may approve, and a
cycle awaiting approval names them to whoever may approve too (a reader reads how many);
trace and maturity are the server's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import reset_default_workspace
from tests.retraining.retrain_support import (
    FEATURES,
    FULL_POLICY,
    PIPELINES,
    build,
    customers,
    edited,
    work_in,
)

pytestmark = [pytest.mark.server]

POLICY = edited(FULL_POLICY, ("approvals: 0", "approvals: 2"))


@dataclass
class Team:
    url: str
    uri: str
    root: Path
    tokens: dict[str, str]

    def call(self, method: str, path: str, who: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=60,
                             **kwargs)  # fmt: skip

    def server_workspace(self) -> Any:
        """The server's own database and folders (what the agent beside it opens)."""
        from driftline.workspace import Workspace

        return Workspace.from_settings(
            home=self.root / ".driftline", uri=self.uri,
            artifact_root=str(self.root / "artifacts"), capture_environment=False,
            async_logging=False,
        )  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def team(request: pytest.FixtureRequest, server_factory: Callable[..., Any]) -> Team:
    from sklearn.linear_model import LogisticRegression

    import driftline as dl
    from driftline.auth import auth_service
    from driftline.core.metadata import Database

    if request.param == "postgres":
        pg = request.getfixturevalue("postgres")
        server = server_factory(uri=pg.url(pg.create_database()), args=("--auth",))
    else:
        server = server_factory(args=("--auth",))
    home = server.root / ".driftline"
    build(home, uri=server.uri, artifact_root=str(server.root / "artifacts"))
    # churn/2: the challenger a cycle would have trained.
    dl.configure(home=home, uri=server.uri, artifact_root=str(server.root / "artifacts"),
                 capture_environment=False, async_logging=False)  # fmt: skip
    frame = customers(2)
    with dl.start_run(experiment="retrain-tests") as run:
        model = LogisticRegression().fit(frame[FEATURES], frame["label"])
        dl.models.log_model(model, "model", input_example=frame[FEATURES].head(3))
    dl.register_model(f"runs:/{run.id}/model", "churn")
    reset_default_workspace()
    database = Database(server.uri)
    auth = auth_service(database, actor="bootstrap")
    tokens = {}
    try:
        for name, role in (("ada", "admin"), ("ed", "editor"), ("vic", "viewer"),
                           ("max", "viewer")):  # fmt: skip
            auth.create_user(name, role=role)
            tokens[name] = auth.create_token(name).secret
        auth.grant("max", model="churn", permission="manage")
    finally:
        auth.close()
        database.dispose()
    return Team(server.url, server.uri, server.root, tokens)


@pytest.fixture
def pipeline_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pipeline's code, where the client runs (the server does not import it)."""
    (tmp_path / "retrain_pipes.py").write_text(PIPELINES)
    work_in(tmp_path, monkeypatch)
    return tmp_path


def error(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


def test_policies_and_cycles_over_rest(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    body = {"text": POLICY}
    assert team.call("PUT", "/retraining/policies", "vic", json=body).status_code == 403
    # An editor edits the model but may not manage it (move its aliases, approve).
    assert team.call("PUT", "/retraining/policies", "ed", json=body).status_code == 403

    three = team.call("PUT", "/retraining/policies", "max",
                      json={"text": edited(POLICY, ("approvals: 2", "approvals: 3"))})  # fmt: skip
    assert three.status_code == 400, three.text
    assert (
        "retrain.yaml line 10: approvals: 3 distinct people must approve, but only 2 can "
        "(ada, max)" in error(three)
    )
    ghost = team.call("PUT", "/retraining/policies", "max",
                      json={"text": edited(POLICY, ("monitor: churn-prod", "monitor: ghost")),
                            "source": "team.yaml"})  # fmt: skip
    assert ghost.status_code == 404
    assert "team.yaml line 4: triggers[0].drift.monitor" in error(ghost)
    typo = team.call("PUT", "/retraining/policies", "max",
                     json={"policy": {"model": "churn", "pipeline": {"name": "p"},
                                      "deployment": "churn", "aprovals": 1}})  # fmt: skip
    assert typo.status_code == 400
    assert "aprovals" in error(typo)
    both = team.call("PUT", "/retraining/policies", "max", json={"text": POLICY, "policy": {}})
    assert both.status_code == 400
    # The server reads no file a caller names: a gates file goes inline from the client.
    named = team.call("PUT", "/retraining/policies", "max",
                      json={"text": POLICY + "gates: ../../etc/passwd\n"})  # fmt: skip
    assert named.status_code == 400, named.text
    assert "gates: ../../etc/passwd is a file name; send the gates inline" in error(named)
    # Its agent imports the pipeline's module: a dotted name, never a file a caller names.
    path = team.call("PUT", "/retraining/policies", "max",
                     json={"text": edited(POLICY, ("module: retrain_pipes",
                                                   "module: ../../evil.py"))})  # fmt: skip
    assert path.status_code == 400, path.text
    assert "a server takes a dotted module name" in error(path)
    # Nested YAML aliases would expand a few bytes into billions of values.
    bomb = team.call("PUT", "/retraining/policies", "ed",
                     json={"text": "a: &a [x, x]\nb: &b [*a, *a]\n" + POLICY})  # fmt: skip
    assert bomb.status_code == 400, bomb.text
    assert "anchors and aliases" in error(bomb)
    # What cannot be stored as JSON (NaN) is refused, not a 500.
    nan = team.call(
        "PUT",
        "/retraining/policies",
        "max",
        json={"text": edited(POLICY, ("params: {", "params: {alpha: .nan, "))},
    )
    assert nan.status_code == 400, nan.text
    assert "NaN" in error(nan)
    # The server does not import pipeline code: an unknown pipeline is the client's check.
    applied = team.call("PUT", "/retraining/policies", "max", json=body)
    assert applied.status_code == 200, applied.text
    assert applied.json()["policy"]["approvals"] == 2
    read = team.call("GET", "/retraining/models/churn/policy", "vic")
    assert read.json()["policy"] == applied.json()["policy"]
    assert team.call("GET", "/retraining/models/nope/policy", "vic").status_code == 404

    assert team.call("POST", "/retraining/models/churn/run", "vic").status_code == 403
    started = team.call("POST", "/retraining/models/churn/run", "max",
                        json={"payload": {"dataset": "customers@1"}})  # fmt: skip
    assert started.status_code == 200, started.text
    outcome = started.json()
    assert outcome["outcome"] == "started"
    cycle = outcome["cycle"]
    assert cycle["state"] == "triggered"  # the agent beside the server drives it
    assert cycle["cause"] == {"kind": "manual", "ref": "max",
                              "payload": {"dataset": "customers@1"}}  # fmt: skip
    again = team.call("POST", "/retraining/models/churn/run", "ada").json()
    assert again["outcome"] == "absorbed"
    assert again["cycle"]["id"] == cycle["id"]
    bad = team.call("POST", "/retraining/models/churn/run", "max", json={"payload": "x"})
    assert bad.status_code == 400

    status = team.call("GET", "/retraining/models/churn/status", "vic").json()["cycle"]
    assert (status["id"], status["absorbed"]) == (cycle["id"], 1)
    history = team.call("GET", "/retraining/models/churn/history", "vic").json()["cycles"]
    assert [c["id"] for c in history] == [cycle["id"]]
    one = team.call("GET", f"/retraining/cycles/{cycle['id']}", "vic").json()["cycle"]
    assert one["state"] == "triggered"
    assert team.call("GET", "/retraining/cycles/nope", "vic").status_code == 404

    with team.server_workspace() as ws:
        entries = ws.audit.entries(entity="churn", limit=20)
        assert ("max", "retraining.policy.apply") in {(e.actor, e.action) for e in entries}

    # The agent beside the server trains and evaluates churn/2; then it waits.
    awaiting = _await_approval(team, cycle["id"], version=2)
    assert "waiting for 2 approval(s)" in awaiting.reason
    # Who may approve is named to whoever may approve too (manage, or admin): to a
    # reader, the admins' and managers' names would be a list of whom to attack.
    hidden = "(their names are shown to those who may approve)"
    for who in ("max", "ada"):
        status = team.call("GET", "/retraining/models/churn/status", who).json()["cycle"]
        assert status["state"] == "awaiting_approval"
        assert "no approval yet (0 of 2); may approve: ada, max" in status["reason"]
    read = _reader_views(team, cycle["id"])
    assert all(f"no approval yet (0 of 2); 2 more people may approve {hidden}" in r for r in read)
    assert not any("ada" in r or "max" in r for r in read)
    signed = team.call("POST", "/registry/models/churn/versions/2/approvals", "max",
                       json={"alias": "champion"})  # fmt: skip
    assert signed.status_code == 200, signed.text
    status = team.call("GET", "/retraining/models/churn/status", "max").json()["cycle"]
    assert "approved by max (1 of 2); may approve: ada" in status["reason"]
    # An approval given is an act, and keeps its author's name (as the version's
    # approvals do for every reader); who else may stays a count.
    read = _reader_views(team, cycle["id"])
    assert all(f"approved by max (1 of 2); 1 more person may approve {hidden}" in r for r in read)
    assert not any("ada" in r for r in read)

    # The CLI through the server shows a reader what the server says to it.
    monkeypatch.setenv("DRIFTLINE_URI", team.url)
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "cli"))
    shown = {}
    for who in ("vic", "max"):
        monkeypatch.setenv("DRIFTLINE_TOKEN", team.tokens[who])
        outs = []
        for args in (("status", "churn"), ("status", "churn", "--json"),
                     ("history", "churn", "--json")):  # fmt: skip
            code, out, err = cli(capsys, "retrain", *args)
            assert code == 0, err
            outs.append(" ".join(out.split()))  # the console wraps long lines
        shown[who] = outs
    assert all(f"1 more person may approve {hidden}" in out for out in shown["vic"])
    assert not any("ada" in out or "may approve:" in out for out in shown["vic"])
    assert all("approved by max (1 of 2); may approve: ada" in out for out in shown["max"])


def _reader_views(team: Team, cycle_id: str) -> list[str]:
    """The reasons a reader (vic) reads of the cycle: its status, history and the cycle."""
    status = team.call("GET", "/retraining/models/churn/status", "vic").json()["cycle"]
    history = team.call("GET", "/retraining/models/churn/history", "vic").json()["cycles"]
    one = team.call("GET", f"/retraining/cycles/{cycle_id}", "vic").json()["cycle"]
    assert [c["id"] for c in (status, history[0], one)] == [cycle_id] * 3
    return [c["reason"] for c in (status, history[0], one)]


def _await_approval(team: Team, cycle_id: str, *, version: int) -> Any:
    """Move a triggered cycle to awaiting approval, as the driver's steps do."""
    from driftline.core.clock import now_ms
    from driftline.retraining import RetrainingService
    from driftline.retraining.cycles import CycleState

    with team.server_workspace() as ws:
        store = ws.service("retraining", RetrainingService).cycles.store
        cycle = store.get_cycle(cycle_id)
        for state, products in (
            (CycleState.TRAINING, {}),
            (CycleState.EVALUATING, {"version": version}),
            (CycleState.AWAITING_APPROVAL, {"reason": "waiting for 2 approval(s)"}),
        ):
            cycle = store.transition(cycle, state, actor="agent", now=now_ms(), **products)
        return cycle


def test_trace_and_maturity_are_the_servers(team: Team) -> None:
    found = team.call("GET", "/retraining/trace/req-1", "vic")
    assert found.status_code == 200, found.text
    trace = found.json()
    assert [p["deployment"] for p in trace["predictions"]] == ["churn"]
    assert [(v["model"], v["version"]) for v in trace["versions"]] == [("churn", 1)]
    missing = team.call("GET", "/retraining/trace/no-such-request", "vic")
    assert missing.status_code == 404
    assert "No prediction with request id 'no-such-request'" in error(missing)
    bad = team.call("GET", "/retraining/trace/req-1", "vic", params={"deployment": "../x"})
    assert bad.status_code == 400

    models = team.call("GET", "/retraining/maturity", "vic", params={"model": "churn"}).json()
    (churn,) = models["models"]
    checks = {c["name"]: c for c in churn["checks"]}
    assert checks["served"]["evidence"] == "answered as stable"
    assert checks["monitoring"]["present"] is False  # no drift reference is stored
    assert "no drift reference stored" in checks["monitoring"]["evidence"]
    assert team.call("GET", "/retraining/maturity", "vic",
                     params={"model": "nope"}).status_code == 404  # fmt: skip


def test_a_remote_workspace_and_the_cli(
    team: Team, pipeline_code: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import json

    from driftline.errors import NotFoundError, PermissionDeniedError
    from driftline.retraining import RetrainingService
    from driftline.workspace import Workspace

    def remote(who: str) -> Workspace:
        return Workspace.from_settings(
            home=pipeline_code / who, uri=team.url, token=team.tokens[who],
            capture_environment=False,
        )  # fmt: skip

    file = pipeline_code / "retrain.yaml"
    file.write_text(edited(POLICY, ("cooldown: 6h", "cooldown: 1s")) + "gates: gates.yaml\n")
    (pipeline_code / "gates.yaml").write_text("gates:\n  - {metric: roc_auc, min: 0.6}\n")
    with remote("max") as ws:
        service = ws.service("retraining", RetrainingService)
        # The client checks the pipeline next to its code, before sending anything.
        with pytest.raises(NotFoundError, match=r"retrain.yaml line 7: pipeline.name"):
            service.policies.apply(edited(POLICY, ("name: retrain_churn", "name: gone")))
        applied = service.policies.apply(file)
        assert applied.cooldown_seconds == 1.0
        # The gates file was read here, next to the policy, and stored on the server.
        assert applied.gates == {"gates": [{"metric": "roc_auc", "min": 0.6}]}
        assert service.policies.policy("churn") == applied
        # What the server says, read the same way through the workspace.
        on_server = team.call("GET", "/retraining/models/churn/status", "max").json()["cycle"]
        status = service.policies.status("churn")
        if on_server is None:
            assert status is None
        else:
            assert status is not None
            assert (status.id, status.state.value) == (on_server["id"], on_server["state"])
            assert status.reason == on_server["reason"]
            assert service.policies.cycle(status.id) == status
            assert status.id in [c.id for c in service.policies.history("churn")]
        (lineage,) = service.trace("req-2").versions  # read from the server's log
        assert lineage.ref == "churn/1"
        with pytest.raises(NotFoundError, match="the server looked in its own prediction log"):
            service.trace("no-such-request")
        (churn,) = service.maturity("churn")
        checks = {c.name: c for c in churn.checks}
        assert checks["retraining_policy"].present  # the server sees its policies
        # Computed here from a log the client reads itself: the policy is still the server's.
        shared = str(team.root / ".driftline" / "predictions")
        (churn,) = service.maturity("churn", log_root=shared)
        checks = {c.name: c for c in churn.checks}
        assert checks["retraining_policy"].evidence == "a retraining policy is applied"
        assert checks["served"].evidence == "answered as stable"
    with (
        remote("vic") as ws,
        pytest.raises(PermissionDeniedError, match="may not manage model 'churn'"),
    ):
        ws.service("retraining", RetrainingService).policies.apply(file)

    monkeypatch.setenv("DRIFTLINE_URI", team.url)
    monkeypatch.setenv("DRIFTLINE_TOKEN", team.tokens["max"])
    monkeypatch.setenv("DRIFTLINE_HOME", str(pipeline_code / "cli"))
    code, out, err = cli(capsys, "retrain", "apply", str(file))
    assert code == 0, err
    assert "Applied the retraining policy of churn" in out
    code, out, err = cli(capsys, "retrain", "run", "churn", "--json")
    assert code == 0, err
    outcome = json.loads(out)
    # A cycle still open (the test before leaves one awaiting approval) takes the trigger.
    assert outcome["outcome"] == ("absorbed" if on_server else "started")
    code, out, err = cli(capsys, "retrain", "status", "churn", "--json")
    assert code == 0, err
    assert json.loads(out)["id"] == outcome["cycle"]["id"]
    code, out, err = cli(capsys, "retrain", "history", "churn", "--json")
    assert code == 0, err
    assert [c["id"] for c in json.loads(out)] == [outcome["cycle"]["id"]]
    code, out, err = cli(capsys, "trace", "req-3", "--json")
    assert code == 0, err
    assert json.loads(out)["predictions"][0]["request_id"] == "req-3"
    code, out, err = cli(capsys, "maturity", "churn")
    assert code == 0, err
    assert "retraining_policy" in out
    monkeypatch.setenv("DRIFTLINE_TOKEN", team.tokens["vic"])
    code, _, err = cli(capsys, "retrain", "run", "churn")
    assert code == 1
    assert "PermissionDeniedError" in err


def cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    from driftline.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
