"""bench.quality runs end to end (briefly) and reports every detector on the same held-out beats."""

import json

import pytest

from bench.quality import main


@pytest.mark.slow
def test_quality_quick_run(tmp_path, capsys):
    out = tmp_path / "q.json"
    assert main(["--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    rows = result["results"]
    assert set(rows) == {"LSTM autoencoder (default)", "LSTM autoencoder, plain L1 error", "kNN-5 (L2)", "kNN-5 (L1)",
                         "PCA-8"}
    # one split: every detector is judged on the same 219 normals and 2,081 anomalies
    assert {(r[0]["n_normal"], r[0]["n_anomaly"]) for r in rows.values()} == {(219, 2081)}
    for name, (row,) in rows.items():
        assert 0.5 < row["auroc"] <= 1.0 and name in printed
    assert "Best baseline by AUROC" in printed
