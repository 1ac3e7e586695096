"""What the sales report says about one product."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from data_service.domain.values import InvalidValue, Money

DEFAULT_REPORT_ROWS = 10
MAX_REPORT_ROWS = 100


@dataclass(frozen=True, slots=True)
class SalesReportRow:
    """Units sold and revenue of one product (in one currency) over a period."""

    product_id: UUID
    sku: str
    units_sold: int
    revenue: Money


def report_limit(requested: int) -> int:
    """Rows of a report: 0 means 10; otherwise 1 to 100."""
    if requested == 0:
        return DEFAULT_REPORT_ROWS
    if not 1 <= requested <= MAX_REPORT_ROWS:
        raise InvalidValue(f"limit must be between 1 and {MAX_REPORT_ROWS} (0 means {DEFAULT_REPORT_ROWS})")
    return requested
