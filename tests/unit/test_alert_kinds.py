"""Every alert kind is named and filterable wherever alerts are shown."""

from pathlib import Path

import pytest

from tallyroom.consumers import watch
from tallyroom.consumers.web import view
from tallyroom.schemas import AlertKind

STYLE = Path(view.__file__).resolve().parent / "static" / "style.css"


@pytest.mark.parametrize("kind", [k.value for k in AlertKind])
def test_each_kind_has_its_labels_and_its_page_filter(kind):
    assert kind in view.ALERT_LABELS and kind in watch.ALERT_LABELS
    assert f'.alerts[data-filter="{kind}"] .alert:not([data-kind="{kind}"])' in STYLE.read_text()
