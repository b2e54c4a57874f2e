"""True person boxes of the synthetic street: every simulated walker's feet and head top projected by the scene's
camera, with ids -- ground truth for anything fitted to people in the image (e.g. the ground-plane estimate).

>>> ids, boxes, scene = true_person_boxes(seed=100, seconds=120)   # (N,), (N, 4) x1 y1 x2 y2, StreetScene
"""

from __future__ import annotations

import numpy as np

from toolkit.data.synthetic.scene import SceneConfig, StreetScene

BOX_HALF_WIDTH = 0.15  # box half-width as a fraction of the projected person height


def true_person_boxes(
    seed: int, seconds: float = 120.0, every: int = 4, camera_jitter: float = 1.0, warmup_s: float = 20.0
) -> tuple[np.ndarray, np.ndarray, StreetScene]:
    """(ids (N,), boxes (N, 4) pixels, the scene) of the walkers in view on every ``every``-th simulated frame
    over ``seconds``; boxes run from the head top to the feet, ``BOX_HALF_WIDTH`` of the height to each side."""
    scene = StreetScene(SceneConfig(seed=seed, camera_jitter=camera_jitter, warmup_s=warmup_s))
    cam = scene.camera
    ids, boxes = [], []
    for k in range(int(seconds * scene.config.fps)):
        state, _ = scene.advance()
        if k % every:
            continue
        foot = np.concatenate([state.ped_pos, np.zeros((len(state.ped_pos), 1))], 1)
        head = foot.copy()
        head[:, 2] = state.ped_height
        (fuv, fd), (huv, hd) = cam.project(foot), cam.project(head)
        ok = (fd > 0) & (hd > 0) & (fuv[:, 0] > 0) & (fuv[:, 0] < cam.width) & (fuv[:, 1] < cam.height)
        ok &= huv[:, 1] > 0
        half = BOX_HALF_WIDTH * (fuv[:, 1] - huv[:, 1])
        box = np.stack([fuv[:, 0] - half, huv[:, 1], fuv[:, 0] + half, fuv[:, 1]], 1)
        ids.append(state.ped_ids[ok])
        boxes.append(box[ok])
    return np.concatenate(ids), np.concatenate(boxes), scene
