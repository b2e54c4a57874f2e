"""``toolkit ground``: a fixed camera's image->ground homography, from the people it sees or four ground points.

Only argparse-level code at import time: OpenCV, LiteRT and numpy are imported inside run().
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

from toolkit.cli.common import add_json_flag, positive_float, positive_int

HELP = "estimate a camera's ground plane (homography in metres) from its pedestrians or four ground points"
DESCRIPTION = """Make the image->ground homography JSON that `toolkit demo --homography FILE` reads, so that the
behaviour stage runs in metres on a fixed camera.

  estimate SOURCE   run the detector and tracker over the first --seconds of SOURCE and fit the ground plane
                    to the people: they are taken as --person-height tall and standing on flat ground; the
                    camera as level (no roll), undistorted, principal point at the centre. Needs people at
                    different distances (feet spanning >= 12% of the frame height) and >= 4 people.
  points            four pixel points and their ground coordinates (metres), or the four corners of a
                    rectangle of known sides (--rect W,L) clicked in order around it.

The file records how it was made ("provenance": method, source, samples, date) and the uncertainty: for
'estimate' a bootstrap over people (distance_rel_std: relative spread of ground distances; horizon and camera
height spreads), for 'points' the effect of a --click-error pixel error on distances. The assumed person height
is a further, systematic scale error (1.65 m people measured as 1.7 m: distances 3% long).

examples:
  toolkit ground estimate ../shared/data/pedestrian_video/pedestrians.avi -o pets.json
  toolkit ground points --size 480x360 --pixels "100,300;380,300;330,200;150,200" --rect 3.5,8 -o cam.json
  toolkit ground points --size 480x360 --pixels "..." --ground "0,0;3.5,0;3.5,8;0,8" -o cam.json
  toolkit demo --source clip.avi --homography pets.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ground_action", metavar="ACTION", required=True)
    est = sub.add_parser("estimate", help="fit the ground plane to the people in a source")
    est.add_argument("source", metavar="SOURCE", help="video file, camera index, URL, or 'synthetic[:...]'")
    est.add_argument(
        "--seconds",
        type=positive_float,
        default=120.0,
        metavar="S",
        help="seconds of the source (default 120)",
    )
    est.add_argument(
        "--person-height",
        type=positive_float,
        default=1.7,
        metavar="M",
        help="mean height of the people in metres (default 1.7; every distance scales with it)",
    )
    est.add_argument("--models", metavar="DIR", help="model folder or detector .tflite (default: models/)")
    est.add_argument("--threads", type=positive_int, metavar="N", help="interpreter threads")
    pts = sub.add_parser("points", help="exact homography from four pixel <-> ground point pairs")
    pts.add_argument(
        "--size", required=True, metavar="WxH", help="frame size the pixels refer to, e.g. 480x360"
    )
    pts.add_argument(
        "--pixels", required=True, metavar="'u,v;...'", help="four pixel points, in order around"
    )
    group = pts.add_mutually_exclusive_group(required=True)
    group.add_argument("--ground", metavar="'x,y;...'", help="their four ground points in metres")
    group.add_argument(
        "--rect",
        metavar="W,L",
        help="the pixels are the corners of a W x L metre rectangle: (0,0) (W,0) (W,L) (0,L)",
    )
    pts.add_argument(
        "--click-error",
        type=positive_float,
        default=2.0,
        metavar="PX",
        help="assumed error of each pixel point, for the uncertainty (default 2)",
    )
    for action in (est, pts):
        action.add_argument(
            "-o", "--output", required=True, metavar="OUT.json", help="homography JSON to write"
        )
        add_json_flag(action)


def _size(text: str) -> tuple[int, int]:
    from toolkit.errors import UsageError

    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 480x360")
    return int(width), int(height)


def _rect(text: str) -> Any:
    from toolkit.errors import UsageError
    from toolkit.pipeline.ground_points import rectangle_corners

    try:
        width, length = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--rect {text!r}: expected W,L in metres, e.g. 3.5,8") from None
    return rectangle_corners(width, length)


def run(args: argparse.Namespace) -> int:
    from toolkit.cli.common import emit
    from toolkit.fileio import write_json_atomic
    from toolkit.pipeline import ground_plane as gp
    from toolkit.pipeline import ground_points as gpts
    from toolkit.pipeline.geometry import homography_from_dict

    provenance: dict[str, Any] = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    if args.ground_action == "estimate":
        from toolkit.pipeline.ground_source import observe_people
        from toolkit.pipeline.sources import parse_spec

        parse_spec(args.source)  # a bad spec fails before the progress line
        print(
            f"ground: tracking people in {args.source} ({args.seconds:g} s) ...", file=sys.stderr, flush=True
        )
        obs, info = observe_people(args.source, args.seconds, args.models, args.threads)
        estimate = gp.estimate_ground_plane(obs, gp.GroundConfig(person_height_m=args.person_height))
        provenance.update(
            source=args.source,
            person_height_m=args.person_height,
            **{k: info[k] for k in ("frames", "seconds", "fps")},
        )
    else:
        size = _size(args.size)
        pixels = gpts.parse_points(args.pixels, "--pixels")
        ground = gpts.parse_points(args.ground, "--ground") if args.ground else _rect(args.rect)
        estimate = gpts.homography_from_points(pixels, ground, size, args.click_error)
        provenance.update(pixels=pixels.tolist(), ground=ground.tolist())
    data = estimate.to_dict(provenance)
    homography_from_dict(data, args.output)  # what the demo will read must validate
    write_json_atomic(args.output, data)
    emit(data, args.json, _render)
    return 0


def _render(data: dict[str, Any]) -> str:
    prov = data["provenance"]
    unc = prov.get("uncertainty", {})
    lines = [
        f"ground plane ({prov['method']}) written; distances +-{100 * unc.get('distance_rel_total', unc.get('distance_rel_std', float('nan'))):.1f}% (1 sigma)"
    ]
    if "camera" in data:
        cam = data["camera"]
        lines.append(
            f"  camera {cam['height_m']:.2f} m high, pitch {cam['pitch_deg']:.1f} deg, focal {cam['focal_px']:.0f} px, "
            f"horizon row {cam['horizon_row']:.0f} (+-{unc.get('horizon_row_std_px', float('nan')):.0f} px)"
        )
        lines.append(f"  {prov['inliers']} of {prov['samples']} person boxes of {prov['tracks']} people used")
    return "\n".join(lines)
