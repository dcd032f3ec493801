"""Template mining: names that tell events apart stay literal, variables widen with aliases, ids are stable."""

import pyarrow as pa

from logpilot_dagster.ingest.mining import ServiceMiner, template_id


def assign(miner: ServiceMiner, lines: list[str], match_first: bool = False) -> list[str]:
    return miner.assign(pa.array(lines), match_first=match_first).to_pylist()


def test_a_word_with_few_values_keeps_one_template_per_value():
    miner = ServiceMiner("proxy")
    lines = ["host1:80 open through proxy p1:5070 HTTPS"] * 50 + ["host2:22 open through proxy p2:5070 SOCKS5"]
    ids = assign(miner, lines)
    assert len(set(ids)) == 2
    assert set(miner.templates().values()) == {"<*> open through proxy <*> HTTPS", "<*> open through proxy <*> SOCKS5"}
    assert miner.counts[ids[0]] == 50 and miner.counts[ids[-1]] == 1


def test_a_word_with_many_values_becomes_a_variable_and_old_ids_alias_the_new_one():
    miner = ServiceMiner("auth")
    first = assign(miner, ["session opened for user alice", "session opened for user bob"])
    assert len(set(first)) == 2
    later = assign(miner, ["session opened for user carol", "session opened for user dave"])
    assert len(set(later)) == 1
    assert miner.templates() == {later[0]: "session opened for user <*>"}
    assert {miner.aliases[i] for i in first} == {later[0]}
    assert miner.counts == {later[0]: 4}


def test_hosts_and_paths_are_variables_as_soon_as_they_differ():
    miner = ServiceMiner("net")
    ids = assign(miner, ["resolved the name alpha.example.org in time", "resolved the name beta.example.org in time"])
    assert len(set(ids)) == 1 and miner.templates()[ids[0]] == "resolved the name <*> in time"


def test_month_names_are_parts_of_a_date_not_event_names():
    miner = ServiceMiner("cron")
    ids = assign(miner, ["job started at Jun 20 by the scheduler", "job started at Jul 17 by the scheduler"])
    assert len(set(ids)) == 1 and miner.templates()[ids[0]] == "job started at <*> <*> by the scheduler"


def test_a_seeded_miner_gives_known_shapes_the_same_ids():
    lines = ["client SPP. initialised session 7", "client WindowsUpdateAgent. initialised session 8"] * 3
    first = ServiceMiner("win")
    ids = assign(first, lines)
    again = ServiceMiner("win", seed=sorted(first.templates().values()))
    assert assign(again, lines, match_first=True) == ids
    assert ids[0] == template_id("win", "client SPP. initialised session <*>") != ids[1]
    assert not again.aliases


def test_one_quantity_written_two_ways_is_one_template_and_the_first_id_aliases_it():
    miner = ServiceMiner("proxy")
    plain = assign(miner, ["a.example.com:80 close, 0 bytes sent, 0 bytes received, lifetime 00:01"])
    assert miner.templates() == {plain[0]: "<*> close, <*> bytes sent, <*> bytes received, lifetime <*>"}
    later = assign(miner, ["b.example.com:80 close, 1314 bytes (1.28 KB) sent, 27289 bytes (26.6 KB) received, lifetime <1 sec",
                           "c.example.com:80 close, 5 bytes sent, 7 bytes received, lifetime 00:02"])
    merged = template_id("proxy", "<*> close, <*> sent, <*> received, lifetime <*>")
    assert later == [merged, merged] and miner.aliases == {plain[0]: merged}
    assert miner.templates() == {merged: "<*> close, <*> sent, <*> received, lifetime <*>"}
    assert miner.counts == {merged: 3}
    again = ServiceMiner("proxy", seed=sorted(miner.templates().values()))
    assert assign(again, ["d.example.com:80 close, 9 bytes sent, 9 bytes (1.2 KB) received, lifetime 00:03"], True) == [merged]


def test_a_replay_through_a_seeded_miner_keeps_every_template_text():
    """A year replayed with the registry's templates as seed writes the same texts: no id moves to an alias
    (a bracketed name prefix once lost its literal tail: ``[node-<*>][write]]`` became ``[node-<*>]]``)."""
    messages = pa.array(["fatal error in thread [elasticsearch[node-1][write]], exiting"] * 3
                        + ["GC pause [young] took 12ms on worker-3 (heap 45%)", "GC pause [young] took 7ms on "
                           "worker-11 (heap 80%)"])
    first = ServiceMiner("search")
    first.mine(messages)
    known = first.templates()
    again = ServiceMiner("search", seed=list(known.values()))
    again.mine(messages)
    assert again.templates() == known
    assert again.aliases == {}


def test_the_live_path_matches_then_widens_a_seeded_template_in_one_batch():
    """Live batches match known templates first and mine the rest: a key mined later in the same batch may widen
    the template an earlier key matched (``[<*>]`` written, ``[_<*>]`` seen), and both keys still get its id."""
    import random

    draw = random.Random(7)
    messages = pa.array([f"merged segment [_{draw.randrange(9999)}] of {draw.randrange(10, 900)}mb in "
                         f"{draw.randrange(1, 90)}s" for _ in range(300)])
    backfill = ServiceMiner("search")
    backfill.mine(messages)
    live = ServiceMiner("search", seed=list(backfill.templates().values()))
    assigned = live.mine(messages, match_first=True)
    assert set(assigned.ids.to_pylist()) <= set(live.templates()) | set(live.aliases)
    assert assigned.unfitted == 0
