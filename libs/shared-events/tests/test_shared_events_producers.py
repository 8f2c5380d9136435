"""Every event shape says who sends it (`EventModel.producers`), the source of the event graph.

That the services' code sends what is declared is checked at the repository level
(tests/repo/test_event_producers.py), where the services' sources are in reach.
"""

from __future__ import annotations

import re

import pytest
from shared_events import CATALOG, EventModel
from shared_events.catalog import VARIANTS

MODELS = [*CATALOG.values(), *(variant for variants in VARIANTS.values() for variant in variants)]
PRODUCER_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def label(model: type[EventModel]) -> str:
    return f"{model.name}+{model.variant}" if model.variant else model.name


@pytest.mark.parametrize("model", MODELS, ids=label)
def test_every_event_shape_names_its_producers(model: type[EventModel]) -> None:
    assert model.producers, f"{label(model)} declares no producer"
    assert len(set(model.producers)) == len(model.producers), model.producers
    for producer in model.producers:
        assert PRODUCER_NAME.match(producer), f"{label(model)}: {producer!r} is not kebab-case"


@pytest.mark.parametrize("model", MODELS, ids=label)
def test_only_the_engine_produces_what_cannot_be_sent(model: type[EventModel]) -> None:
    if model.sendable:
        assert "engine" not in model.producers, label(model)
    else:
        assert model.producers == ("engine",), label(model)


def test_the_base_class_declares_nobody() -> None:
    # A new event that forgets to declare its producers fails the test above instead of
    # inheriting someone else's.
    assert EventModel.producers == ()
