"""RFM scores and segments, lifecycle stages, and monthly cohorts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from haina.analytics.clv import cohorts, rfm, summary
from haina.analytics.clv.estimators import BetaGeoFitter


def test_quintile_scores_split_distinct_values_into_fifths():
    scores = rfm.quintile_scores(np.arange(100))
    assert np.array_equal(np.bincount(scores)[1:], [20] * 5)
    assert scores[0] == 1 and scores[-1] == 5
    assert np.array_equal(rfm.quintile_scores(np.arange(100), higher_is_better=False), scores[::-1])


def test_tied_values_share_the_score_of_their_lowest_position():
    values = np.r_[np.zeros(60), np.ones(20), np.full(20, 5.0)]  # 60% one-time buyers
    scores = rfm.quintile_scores(values)
    assert set(scores[:60]) == {1} and set(scores[60:80]) == {4} and set(scores[80:]) == {5}


def segment_of(r: int, f: int, m: int) -> str:
    return str(rfm._segment(np.array([r]), np.array([f]), np.array([(f + m + 1) // 2]))[0])


@pytest.mark.parametrize(
    ("scores", "segment"),
    [
        ((5, 5, 5), "champions"),
        ((4, 4, 3), "champions"),
        ((5, 1, 1), "new"),
        ((3, 3, 3), "loyal"),
        ((5, 3, 2), "loyal"),
        ((4, 2, 2), "potential"),
        ((3, 1, 1), "potential"),
        ((1, 5, 5), "cant_lose"),
        ((1, 4, 3), "cant_lose"),
        ((2, 5, 5), "at_risk"),
        ((1, 3, 3), "at_risk"),
        ((2, 2, 2), "hibernating"),
        ((1, 1, 2), "lost"),
        ((1, 2, 2), "lost"),
        ((1, 2, 3), "at_risk"),
    ],
)
def test_segments_follow_the_documented_rules(scores, segment):
    assert segment_of(*scores) == segment


def test_every_rfm_cell_has_exactly_one_segment():
    cells = [(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]
    segments = {segment_of(*cell) for cell in cells}
    assert segments == set(rfm.SEGMENTS)


def test_rfm_segments_of_the_cdnow_customers(cdnow_transactions):
    s = summary.summary_data_from_transaction_data(
        cdnow_transactions, "customer_id", "date", "dollar_value"
    )
    out = rfm.rfm_segments(s)
    assert list(out.columns) == ["r_score", "f_score", "m_score", "rfm", "segment"]
    assert out.index.equals(s.index)
    assert set(out["segment"]) <= set(rfm.SEGMENTS)
    assert out[["r_score", "f_score", "m_score"]].isin(range(1, 6)).all().all()
    # the most recent, most frequent, biggest spenders are champions
    best = s.assign(since=s["T"] - s["recency"]).sort_values(
        ["since", "frequency"], ascending=[True, False]
    )
    assert out.loc[best.index[0], "segment"] == "champions"


def test_lifecycle_stages_follow_the_documented_rules():
    s = pd.DataFrame(
        {
            "frequency": [0, 0, 5, 5, 5, 3, 4],
            "recency": [0, 0, 290, 250, 100, 295, 299],
            "T": [10, 400, 300, 300, 300, 300, 300],
            "last_gap": [0, 0, 10, 10, 10, 10, 200],
        },
        index=list("abcdefg"),
    )
    p_alive = np.array([1.0, 1.0, 0.9, 0.4, 0.1, 0.9, 0.95])
    stages = rfm.lifecycle_stages(s, p_alive, freq="D")
    assert stages.to_dict() == {
        "a": "new",  # first order 10 days ago
        "b": "lapsed",  # one order, 400 days ago: P(alive) is 1 under BG/NBD, the time rule decides
        "c": "active",
        "d": "at_risk",
        "e": "lapsed",
        "f": "active",
        "g": "reactivated",  # bought a day ago after 200 days of silence
    }
    assert set(stages) <= set(rfm.STAGES)


def test_lifecycle_stages_with_a_fitted_model(cdnow_transactions):
    s = summary.summary_data_from_transaction_data(
        cdnow_transactions, "customer_id", "date", freq="W", last_gap=True
    )
    model = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    stages = rfm.lifecycle_stages(
        s, model.conditional_probability_alive(s["frequency"], s["recency"], s["T"]), freq="W"
    )
    counts = stages.value_counts()
    assert counts.sum() == len(s) and set(counts.index) <= set(rfm.STAGES)
    assert counts["lapsed"] > counts["active"]  # CDNOW: most of the 1997 cohort is gone by mid-1998


def test_cohort_retention_and_revenue_equal_a_pandas_groupby(cdnow_transactions):
    ours = cohorts.cohort_table(cdnow_transactions, "customer_id", "date", "dollar_value")
    t = cdnow_transactions.assign(
        month=cdnow_transactions["date"].dt.year * 12 + cdnow_transactions["date"].dt.month - 1
    )
    t["cohort"] = t.groupby("customer_id")["month"].transform("min")
    t["since"] = t["month"] - t["cohort"]
    ref = t.groupby(["cohort", "since"]).agg(
        active=("customer_id", "nunique"), revenue=("dollar_value", "sum")
    )
    assert len(ours) == len(ref)
    np.testing.assert_array_equal(ours["active"], ref["active"])
    np.testing.assert_allclose(ours["revenue"], ref["revenue"], rtol=1e-9)
    assert (ours.loc[ours["months_since_first"] == 0, "retention"] == 1.0).all()
    assert list(ours["cohort"].drop_duplicates().astype(str)) == [
        "1997-01-01",
        "1997-02-01",
        "1997-03-01",
    ]
    january = ours[ours["cohort"].astype(str) == "1997-01-01"]
    assert january["cohort_size"].iloc[0] == 7846
    matrix = cohorts.retention_matrix(ours)
    assert matrix.shape == (3, 18) and matrix.iloc[:, 0].tolist() == [1.0, 1.0, 1.0]
