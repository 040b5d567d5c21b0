"""bind()'s fast copy of the request context equals attrs.evolve, field for field."""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from fxa_metrics._context import _FIELD_NAMES, RequestContext, _evolve

_TEXT = [n for n in _FIELD_NAMES if n not in ("metrics_opt_out", "skip_client_ip", "state")]


@given(
    base=st.fixed_dictionaries({}, optional={n: st.text(max_size=8) for n in _TEXT}),
    changes=st.fixed_dictionaries(
        {"state": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)},
        optional={
            **{n: st.none() | st.text(max_size=8) for n in _TEXT},
            "metrics_opt_out": st.none() | st.booleans(),
            "skip_client_ip": st.booleans(),
        },
    ),
)
def test_fast_evolve_equals_attrs_evolve(base: dict[str, str], changes: dict[str, object]) -> None:
    ctx = RequestContext(**base)  # type: ignore[arg-type]
    fast = _evolve(ctx, dict(changes))
    slow = attrs.evolve(ctx, **changes)  # type: ignore[misc]
    assert fast == slow
    assert fast.state is changes["state"]
    assert all(getattr(fast, n) == getattr(slow, n) for n in _FIELD_NAMES)
