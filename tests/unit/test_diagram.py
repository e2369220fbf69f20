"""The method on one page: the drawn pipeline diagram and its copy in docs/."""
from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt

from aliqa_lib import diagram
from aliqa_lib.paths import project_root


def test_pipeline_names_every_step_and_the_loop():
    fig = diagram.pipeline_figure()
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
    for step in ("Distortion criterion", "Content criterion", "Curriculum band", "Weighted Borda fusion",
                 "Humans label", "Train 3 heads", "score = wt x r_c + r_u", "rounds 2 and 3"):
        assert step in text, step


def test_docs_pipeline_png_is_the_current_drawing(tmp_path):
    fresh = mpimg.imread(diagram.save_pipeline(tmp_path / "p.png"))
    shipped = mpimg.imread(project_root() / "docs" / "pipeline.png")
    assert shipped.shape == fresh.shape, "redraw docs/pipeline.png with aliqa_lib.diagram.save_pipeline"
    assert abs(float(shipped.mean()) - float(fresh.mean())) < 0.01
