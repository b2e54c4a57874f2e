"""Image reading, class-per-folder datasets and class-index masks, on small hand-made files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers_data import one_line_error

from toolkit.data.image_folder import (
    image_size,
    list_images,
    load_image,
    load_images,
    read_rgb,
    scan_image_folder,
)
from toolkit.data.masks import (
    PERSON_FROM_PANOPTIC,
    MaskMapping,
    load_image_and_mask,
    load_mask,
    pair_masks,
    polygons_to_mask,
    read_mask,
    remap_mask,
    resize_mask,
)


def write_rgb(path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_read_rgb_channel_order_and_grey(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    write_rgb(tmp_path / "red.png", rgb)
    got = read_rgb(tmp_path / "red.png")
    assert got.shape == (4, 6, 3) and got[0, 0].tolist() == [200, 0, 0]
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((5, 7), 77, np.uint8))
    assert read_rgb(tmp_path / "grey.png")[2, 3].tolist() == [77, 77, 77]


def test_unreadable_images_name_the_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("broken.jpg", "empty.png"):
        message = one_line_error(load_image, tmp_path / name, (8, 8))
        assert str(tmp_path / name) in message
    assert "not found" in one_line_error(read_rgb, tmp_path / "nope.jpg")


def test_image_size_from_headers_matches_decoding(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    for name in ("a.png", "a.jpg", "a.bmp"):
        write_rgb(tmp_path / name, rgb)
        assert image_size(tmp_path / name) == (53, 37)
    progressive = tmp_path / "p.jpg"
    cv2.imwrite(str(progressive), rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert image_size(progressive) == (53, 37)


def test_load_image_resize_letterbox_and_grey(tmp_path):
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)
    rgb[:, 20:] = (0, 0, 255)
    write_rgb(tmp_path / "img.png", rgb)
    stretched = load_image(tmp_path / "img.png", (10, 10))
    assert stretched.dtype == np.float32 and stretched.shape == (10, 10, 3)
    assert np.allclose(stretched[:, 0], [1, 0, 0]) and np.allclose(stretched[:, -1], [0, 0, 1])
    boxed = load_image(tmp_path / "img.png", (10, 10), keep_aspect=True)
    assert np.allclose(boxed[0, 0], 114 / 255) and np.allclose(boxed[5, 0], [1, 0, 0])  # 20x40 -> 5x10 + pad
    grey = load_image(tmp_path / "img.png", (4, 4), channels=1)
    assert grey.shape == (4, 4, 1) and np.isclose(grey[0, 0, 0], 0.299, atol=0.01)
    batch = load_images([tmp_path / "img.png"] * 3, (6, 8))
    assert batch.shape == (3, 6, 8, 3)


def test_scan_image_folder(tmp_path):
    for cls, count in (("dog", 2), ("cat", 3)):
        for i in range(count):
            write_rgb(tmp_path / "ds" / cls / f"{i}.PNG", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "ds" / "cat" / "notes.txt").write_text("not an image")
    data = scan_image_folder(tmp_path / "ds")
    assert data.class_names == ("cat", "dog")
    assert data.labels.tolist() == [0, 0, 0, 1, 1]
    assert [p.parent.name for p in data.paths] == ["cat"] * 3 + ["dog"] * 2
    fixed = scan_image_folder(tmp_path / "ds", class_names=["dog", "cat"])
    assert fixed.labels.tolist() == [0, 0, 1, 1, 1]
    assert "'cat' is not one of" in one_line_error(scan_image_folder, tmp_path / "ds", ["dog"])
    assert "no sub-folder for class 'bird'" in one_line_error(
        scan_image_folder, tmp_path / "ds", ["cat", "dog", "bird"]
    )
    (tmp_path / "ds" / "empty").mkdir()
    assert str(tmp_path / "ds" / "empty") in one_line_error(scan_image_folder, tmp_path / "ds")
    assert len(list_images(tmp_path / "ds")) == 5
    assert "no images" in one_line_error(list_images, tmp_path / "ds", recursive=False)


def test_masks_read_map_resize(tmp_path):
    mask = np.array([[0, 1, 1, 7], [0, 1, 255, 7]], np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask)
    mapped = remap_mask(mask, PERSON_FROM_PANOPTIC)
    assert mapped.tolist() == [[255, 1, 1, 0], [255, 1, 0, 0]]
    assert remap_mask(mask, MaskMapping({7: 2}, default=255)).tolist() == [[255, 255, 255, 2]] * 2
    big = resize_mask(mapped, (4, 8))
    assert set(np.unique(big)) <= {0, 1, 255}  # nearest: no invented ids
    assert big[0].tolist() == [255, 255, 1, 1, 1, 1, 0, 0]
    assert load_mask(tmp_path / "m.png", PERSON_FROM_PANOPTIC, size_hw=(4, 8)).tolist() == big.tolist()


def test_bad_masks_name_the_file(tmp_path):
    cv2.imwrite(str(tmp_path / "colour.png"), np.zeros((4, 4, 3), np.uint8))
    message = one_line_error(read_mask, tmp_path / "colour.png")
    assert str(tmp_path / "colour.png") in message and "3 channels" in message
    cv2.imwrite(str(tmp_path / "deep.png"), np.zeros((4, 4), np.uint16))
    assert "uint16" in one_line_error(read_mask, tmp_path / "deep.png")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG junk")
    assert str(tmp_path / "junk.png") in one_line_error(read_mask, tmp_path / "junk.png")
    write_rgb(tmp_path / "img" / "a.jpg", np.zeros((6, 8, 3), np.uint8))
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), np.zeros((6, 9), np.uint8))
    message = one_line_error(load_image_and_mask, tmp_path / "img" / "a.jpg", tmp_path / "masks" / "a.png")
    assert "9x6" in message and "8x6" in message and str(tmp_path / "masks" / "a.png") in message


def test_pair_masks_and_image_mask_loading(tmp_path):
    for stem in ("a", "b", "c"):
        write_rgb(tmp_path / "img" / f"{stem}.jpg", np.full((6, 8, 3), 100, np.uint8))
    (tmp_path / "masks").mkdir()
    for stem in ("a", "c"):
        cv2.imwrite(str(tmp_path / "masks" / f"{stem}.png"), np.ones((6, 8), np.uint8))
    pairs = pair_masks(tmp_path / "img", tmp_path / "masks")
    assert [(i.name, m.name) for i, m in pairs] == [("a.jpg", "a.png"), ("c.jpg", "c.png")]  # b: unlabelled
    image, mask = load_image_and_mask(*pairs[0], size_hw=(3, 4), mapping=PERSON_FROM_PANOPTIC)
    assert image.shape == (3, 4, 3) and image.dtype == np.float32 and mask.tolist() == [[1] * 4] * 3
    cv2.imwrite(str(tmp_path / "masks" / "zzz.png"), np.ones((6, 8), np.uint8))
    assert "zzz.png has no image" in one_line_error(pair_masks, tmp_path / "img", tmp_path / "masks")


def test_polygons_to_mask():
    square = np.array([[1, 1], [5, 1], [5, 5], [1, 5]], np.float32)
    tri = np.array([[4, 4], [8, 4], [8, 8]], np.float32)
    mask = polygons_to_mask([square, tri], [1, 2], (10, 10))
    assert mask[3, 3] == 1 and mask[0, 0] == 0 and mask[5, 7] == 2 and mask[4, 4] == 2  # later paints over
    assert "0-255" in one_line_error(polygons_to_mask, [square], [300], (10, 10))


@pytest.mark.shared
def test_real_coco128_images_and_masks(shared):
    coco = shared / "data" / "coco128"
    images = list_images(coco / "images" / "train2017")
    assert len(images) == 128
    for path in images[:16]:
        h, w = read_rgb(path).shape[:2]
        assert image_size(path) == (w, h)
        assert 333 <= w <= 640 and 218 <= h <= 640
    pairs = pair_masks(coco / "images" / "train2017", coco / "semantic_segmentation" / "masks" / "train2017")
    assert len(pairs) == 100
    with_person = 0
    for image_path, mask_path in pairs:
        image, mask = load_image_and_mask(image_path, mask_path, mapping=PERSON_FROM_PANOPTIC)
        assert mask.shape == image.shape[:2]
        with_person += bool((mask == 1).any())
    assert with_person == 51
