import torch

from hyperzoo.graphs import ArchGraph
from hyperzoo.graphs.draw import draw_graph, layout_by_depth


def diamond() -> ArchGraph:
    return ArchGraph.from_dag(
        ["input", "conv", "conv", "sum"],
        ["", "a", "b", ""],
        [None, (2, 3), (2, 3), None],
        [(0, 1), (0, 2), (1, 3), (2, 3)],
    )


def test_layout_columns_are_depths_and_rows_are_centred():
    pos = layout_by_depth(diamond())
    assert pos[:, 0].tolist() == [0, 1, 1, 2]
    assert pos[1, 1] == -pos[2, 1] and pos[0, 1] == 0


def test_draw_to_file(tmp_path):
    path = tmp_path / "d.svg"
    draw_graph(diamond(), path, labels=True)
    assert path.stat().st_size > 0
    fig = draw_graph(diamond())
    assert fig.axes and torch.is_tensor(layout_by_depth(diamond()))
