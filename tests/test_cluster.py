"""``check --cluster``: partitions judged on a Dask cluster find exactly what one process finds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from bench_loader import load_bench
from click.testing import CliRunner
from conftest import PG_URL

from engine.app import build_app
from engine.check import run_check
from engine.cli import main
from engine.cluster.plan import plan_partitions, subtree_sizes
from engine.cluster.tables import CheckPartition
from engine.config import ClusterSettings, ConfigError, parse_config
from engine.sample import sample_facts
from engine.subjects.registry import Registry
from engine.violations.tables import Violation
from facts.db import create_schema_engine
from facts.errors import Location
from facts.readers import read_file

AS_OF = dt.date(2018, 3, 1)
_CP = CheckPartition.__table__  # type: ignore[attr-defined]
_V = Violation.__table__  # type: ignore[attr-defined]


def _sample_app(path: str | Path):  # type: ignore[no-untyped-def]
    app = build_app(str(path))
    app.init()
    app.facts.import_items((Location("sample", i), f) for i, f in enumerate(sample_facts()))
    return app


def _province(tmp: Path) -> Path:
    """Bench scale 0.01 cut into five departments of 10 branches (five top-level orgs to share out)."""
    module = load_bench("generate", "bench_generate_for_cluster")
    module.BRANCHES_PER_DEPARTMENT = 10  # type: ignore[attr-defined]
    module.generate(0.01, 7, tmp)
    return tmp / "facts.jsonl"


def _json(findings) -> list[dict]:  # type: ignore[no-untyped-def]
    return sorted((f.to_json() for f in findings), key=lambda j: j["key"])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two worker processes of one thread each, as `dask worker --nthreads 1` would give."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as lc:
        yield lc.scheduler_address


# --- planning -------------------------------------------------------------------------------------


def test_partitions_hold_every_subtree_once_and_balance_the_facts():
    sizes = {"a": 90, "b": 50, "c": 40, "d": 30, "e": 20, "f": 10, "g": 1}
    parts = plan_partitions(sizes, 3)
    assert sorted(r for p in parts for r in p.roots) == sorted(sizes)
    assert [p.facts for p in parts] == sorted((p.facts for p in parts), reverse=True)
    assert max(p.facts for p in parts) <= 4 / 3 * (sum(sizes.values()) / 3) + 1
    assert [p.orphans for p in parts] == [True, False, False]  # org-less subjects in exactly one
    assert plan_partitions(sizes, 3) == parts  # deterministic
    assert len(plan_partitions(sizes, 50)) == len(sizes)  # never more partitions than subtrees
    assert plan_partitions({}, 4)[0].orphans  # no orgs: one partition, still judging org-less subjects
    with pytest.raises(ValueError):
        plan_partitions(sizes, 0)


def test_subtree_sizes_count_the_rows_under_each_top_level_org(tmp_path):
    app = _sample_app(tmp_path / "s.db")
    with app.db.connect() as conn:
        registry = Registry.load(conn)
        sizes = subtree_sizes(conn, registry)
        members = conn.execute(sa.text("SELECT count(*) FROM member")).scalar()
        dues = conn.execute(sa.text("SELECT count(*) FROM dues")).scalar()
        meetings = conn.execute(sa.text("SELECT count(*) FROM meeting")).scalar()
        attendance = conn.execute(sa.text("SELECT count(*) FROM meeting_attendance")).scalar()
    roots = {registry.path(o)[0] for o in registry.orgs}
    assert set(sizes) == roots
    assert sum(sizes.values()) == members + dues + meetings + attendance + len(roots)
    assert max(sizes, key=lambda r: sizes[r]) == "oc"  # the organ committee holds the branches


# --- on a LocalCluster of processes ----------------------------------------------------------------


def test_the_sample_on_a_cluster_finds_what_one_process_finds(tmp_path, cluster):
    app = _sample_app(tmp_path / "s.db")
    one = run_check(app, "2017", AS_OF, dry_run=True)
    many = run_check(app, "2017", AS_OF, dry_run=True, cluster=cluster)
    assert _json(many.findings) == _json(one.findings)
    assert len(one.findings) == 50
    assert many.evaluation.scope == one.evaluation.scope
    assert many.evaluation.subjects == one.evaluation.subjects
    parts = many.evaluation.partitions  # type: ignore[attr-defined]
    assert len(parts) == 4 and sum(p.findings for p in parts) == 50
    assert len({p.worker for p in parts}) >= 2  # the partitions really were spread out


def test_in_thread_isolation_finds_the_same(tmp_path, cluster):
    app = _sample_app(tmp_path / "s.db")
    app.config = app.config.model_copy(update={"cluster": ClusterSettings(isolate="thread", partitions=3)})
    one = run_check(app, "2017", AS_OF, dry_run=True)
    many = run_check(app, "2017", AS_OF, dry_run=True, cluster=cluster)
    assert _json(many.findings) == _json(one.findings)
    assert len(many.evaluation.partitions) == 3  # type: ignore[attr-defined]


def _in_thread(app):  # type: ignore[no-untyped-def]
    """Matching in the worker's thread: no interpreter start per partition (the suite's time)."""
    app.config = app.config.model_copy(update={"cluster": ClusterSettings(isolate="thread")})
    return app


def test_bench_province_on_a_cluster_finds_what_one_process_finds(tmp_path, cluster):
    app = _in_thread(build_app(str(tmp_path / "p.db")))
    app.init()
    assert app.facts.import_items(read_file(_province(tmp_path))).rejected == 0
    one = run_check(app, "2017", AS_OF, dry_run=True)
    many = run_check(app, "2017", AS_OF, dry_run=True, cluster=cluster)
    assert len(one.findings) > 100
    assert _json(many.findings) == _json(one.findings)
    assert many.evaluation.subjects == one.evaluation.subjects
    roots = [r for p in many.evaluation.partitions for r in p.roots]  # type: ignore[attr-defined]
    with app.db.connect() as conn:
        registry = Registry.load(conn)
    assert sorted(roots) == sorted({registry.path(o)[0] for o in registry.orgs})  # each subtree once
    assert {r.split("-")[0] for r in roots} == {f"d{d:03d}" for d in range(5)}


def test_a_member_transferred_between_partitions_is_judged_as_in_one_process(tmp_path, cluster):
    from test_partition import transfer_across_subtrees

    app = _in_thread(build_app(str(tmp_path / "t.db")))
    app.init()
    report = app.facts.import_items((Location("t", i), f) for i, f in enumerate(transfer_across_subtrees()))
    assert report.rejected == 0
    one = run_check(app, "2017", AS_OF, dry_run=True)
    many = run_check(app, "2017", AS_OF, dry_run=True, cluster=cluster)
    parts = many.evaluation.partitions  # type: ignore[attr-defined]
    assert sorted(r for p in parts for r in p.roots) == ["da", "oc1"] and all(len(p.roots) == 1 for p in parts)
    assert not [f for f in one.findings if f.rule == "member.absence.six_months" and f.subject_id == "t1"]
    assert _json(many.findings) == _json(one.findings)


def test_stored_on_postgresql_with_partition_records_and_no_duplicates_on_rerun(tmp_path, cluster):
    engine, schema, drop = create_schema_engine(PG_URL)
    engine.dispose()
    try:  # the workers reach the same schema through the URL, as a remote worker would
        app = _in_thread(_sample_app(f"{PG_URL}?options=-csearch_path%3D{schema}"))  # type: ignore[arg-type]
        first = run_check(app, "2017", AS_OF, cluster=cluster)
        again = run_check(app, "2017", AS_OF, cluster=cluster)
        assert first.stored is not None and again.stored is not None
        assert len(first.stored.new) == 50 and not again.stored.new and not again.stored.resolved
        with app.db.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(_V)).scalar() == 50
            rows = conn.execute(sa.select(_CP).where(_CP.c.run_id == again.run_id)).all()
        assert len(rows) == 4 and sum(r.findings for r in rows) == 50
        assert not any(r.retried for r in rows) and all(r.worker for r in rows)
        app.db.dispose()
    finally:
        drop()


def test_cli_check_on_a_cluster(tmp_path, cluster):
    db = tmp_path / "c.db"
    _sample_app(db).db.dispose()
    runner = CliRunner()
    threads = tmp_path / "threads.toml"
    threads.write_text('[cluster]\nisolate = "thread"\n', encoding="utf-8")
    res = runner.invoke(
        main,
        ["--db", str(db), "--config", str(threads), "check", "--period", "2017", "--as-of", "2018-03-01"]
        + ["--cluster", cluster],
    )
    assert res.exit_code == 0, res.output
    assert "发现 50 项问题" in res.output and "新增 50" in res.output
    config = tmp_path / "partyrules.toml"  # the address from the config file; an unreachable one fails clearly
    config.write_text('[cluster]\naddress = "tcp://127.0.0.1:9"\nconnect_timeout = 2\n', encoding="utf-8")
    res = runner.invoke(
        main, ["--db", str(db), "--config", str(config), "check", "--period", "2017", "--as-of", "2018-03-01"]
    )
    assert res.exit_code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in res.output


def test_cluster_config_is_checked():
    cfg = parse_config({"cluster": {"address": "tcp://h:8786", "isolate": "thread", "partitions": 8}}, "x.toml")
    assert cfg.cluster.address == "tcp://h:8786" and cfg.cluster.partitions == 8
    with pytest.raises(ConfigError, match=r"x.toml: cluster.adress: .*did you mean 'address'"):
        parse_config({"cluster": {"adress": "tcp://h:8786"}}, "x.toml")
    with pytest.raises(ConfigError, match="cluster.isolate"):
        parse_config({"cluster": {"isolate": "fork"}}, "x.toml")


def test_the_example_config_documents_every_cluster_key():
    from engine.config import load_config

    example = Path(__file__).resolve().parent.parent / "docs" / "partyrules.example.toml"
    assert load_config(example).cluster == ClusterSettings()  # the example shows the defaults
    text = example.read_text(encoding="utf-8")
    section = text[text.index("[cluster]") : text.index("[alerts]")]
    for key in ClusterSettings.model_fields:
        assert f"{key} = " in section, key


def test_a_bad_stored_row_on_a_cluster_is_the_same_data_quality_finding_as_in_one_process(tmp_path, cluster):
    """The coordinator screens the store like a one-process check: the workers never see the bad row."""
    app = _sample_app(tmp_path / "s.db")
    with app.db.begin() as conn:
        conn.exec_driver_sql("UPDATE dues SET amount = 1e308 WHERE member = 'm003' AND month = '2017-05'")
        conn.exec_driver_sql("UPDATE org SET term_years = 100000 WHERE id = 'oc'")
    one = run_check(app, "2017", AS_OF, dry_run=True)
    many = run_check(app, "2017", AS_OF, dry_run=True, cluster=cluster)
    a, b = {f["key"] for f in _json(many.findings)}, {f["key"] for f in _json(one.findings)}
    assert (sorted(a - b), sorted(b - a)) == ([], [])
    assert _json(many.findings) == _json(one.findings)
    quality = [f for f in many.findings if f.rule == "data.quality.unjudgeable"]
    assert len(quality) == 2
    assert many.evaluation.held == one.evaluation.held
    assert many.evaluation.scope == one.evaluation.scope


def test_a_task_loads_only_its_partitions_part_of_the_registry(tmp_path, monkeypatch):
    from engine.cluster.coordinator import plan
    from engine.cluster.job import PartitionJob, judge
    from engine.evaluate import evaluate
    from engine.periods import parse_range

    app = build_app(str(tmp_path / "p.db"))
    app.init()
    assert app.facts.import_items(read_file(_province(tmp_path))).rejected == 0
    with app.db.connect() as conn:
        parts = plan(conn, 3)
        whole = Registry.load(conn)
        one = evaluate(conn, app.pack(), parse_range("2017"), AS_OF, 10, processes=0)
    loaded: list[Registry] = []
    real = Registry.load.__func__  # type: ignore[attr-defined]

    def spy(cls, conn, orgs=None, members=None):  # type: ignore[no-untyped-def]
        reg = real(cls, conn, orgs, members)
        loaded.append(reg)
        return reg

    monkeypatch.setattr(Registry, "load", classmethod(spy))
    url = app.db.url.render_as_string(hide_password=False)
    found = [f for p in parts for f in judge(PartitionJob(url, app.pack(), "2017", AS_OF, 10, None, p)).findings]
    assert len(loaded) == len(parts) == 3 and all(reg.partial for reg in loaded)
    assert all(len(reg.members) < 0.6 * len(whole.members) for reg in loaded)  # its own share, not all
    assert set().union(*(reg.members for reg in loaded)) == set(whole.members)
    assert _json(found) == _json(one.findings)
