"""Review 8: the distinct-keys count (`_count_keys`) against records edited during a read.

A list sorted by `updated_at` (the usual order of an incremental-ready API) moves a record
edited during the read to its end: the records after its old place shift back one, so one
of them is never served, while the edited record comes again, on other content, on a
later page. The announced total and the records that arrived agree; only the distinct
keys tell the read is short.
"""

from __future__ import annotations

import pytest

from interlink.errors import IncompleteReadError

from .test_totals_keys import paged, watch_read


def test_a_record_edited_and_moved_onto_the_next_page_is_a_short_read():
    rows = [{"id": n, "name": f"item {n}", "updated_at": n} for n in range(1, 21)]
    first = rows[:10]
    # Between the pages, item 3 is edited: it moves to the end, the rest shift back one.
    edited = {"id": 3, "name": "item 3 edited", "updated_at": 99}
    now = [r for r in rows if r["id"] != 3] + [edited]
    second = now[10:20]
    assert 11 not in [r["id"] for r in first + second], "item 11 was never served"
    with pytest.raises(IncompleteReadError) as info:
        watch_read([first, second], 20)
    assert "only 19 distinct `id`s" in str(info.value)


def test_order_lines_numbered_per_order_on_one_page_still_stand_aside():
    """Two records under one key on ONE page are not an edit (a page is one answer): the
    key is not unique, and the count stands aside as before."""
    records = [{"order": o, "id": line} for o in range(1, 6) for line in range(1, 6)]
    watch = watch_read(paged(records, 10), 25)
    assert watch._keys is None
