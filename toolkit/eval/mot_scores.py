"""CLEAR MOT, identity (IDF1) and HOTA counts for one prepared sequence, as TrackEval computes them (numpy only).

Each scorer is a line-for-line port of TrackEval's ``eval_sequence`` (github.com/JonathonLuiten/TrackEval,
``trackeval/metrics/clear.py``, ``identity.py``, ``hota.py``; the code behind the MOTChallenge leaderboard):

* CLEAR MOT -- Bernardin & Stiefelhagen, "Evaluating multiple object tracking performance: the CLEAR MOT
  metrics", EURASIP JIVP 2008; MT / PT / ML and fragmentations from Li, Huang & Nevatia, CVPR 2009.
* Identity -- Ristani et al., "Performance measures and a data set for multi-target, multi-camera tracking",
  ECCV 2016 workshops.
* HOTA -- Luiten et al., "HOTA: a higher order metric for evaluating multi-object tracking", IJCV 2020.

Every Hungarian step uses :func:`toolkit.pipeline.assignment.linear_sum_assignment` (same optimum as scipy's).
The input is a :class:`PreparedSequence` (built by :func:`toolkit.eval.mot_metrics.prepare_sequence`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.pipeline.assignment import linear_sum_assignment

EPS = np.finfo(float).eps  # TrackEval's tolerance on every threshold comparison
ALPHAS = np.arange(
    0.05, 0.99, 0.05
)  # HOTA's localisation thresholds 0.05 ... 0.95, exactly as TrackEval builds them


@dataclass(frozen=True, eq=False)
class PreparedSequence:
    """Scored frames in time order, with ids relabelled 0..n-1 (TrackEval's preprocessed ``data``)."""

    gt_ids: list[np.ndarray]  # per frame, int (n_gt,) ids in 0..num_gt_ids-1, unique within the frame
    pred_ids: list[np.ndarray]  # per frame, int (n_pred,) ids in 0..num_pred_ids-1, unique within the frame
    similarity: list[np.ndarray]  # per frame, float64 (n_gt, n_pred) IoU
    num_gt_ids: int
    num_pred_ids: int

    @property
    def num_gt_boxes(self) -> int:
        return sum(len(ids) for ids in self.gt_ids)

    @property
    def num_pred_boxes(self) -> int:
        return sum(len(ids) for ids in self.pred_ids)


def clear_scores(seq: PreparedSequence, threshold: float = 0.5) -> dict[str, float]:
    """CLEAR MOT counts and ratios: TP, FN, FP, IDSW, Frag, MT, PT, ML, MOTP, MOTA, precision, recall.

    Per frame, a Hungarian matching on ``1000 * continuing + IoU`` (pairs with IoU < ``threshold`` forbidden)
    keeps the pairs matched in the previous scored frame whenever it can. An ID switch is a ground-truth object
    matched to another prediction id than at its last match (any number of frames back). MT: tracked in more
    than 80 % of its frames, ML: less than 20 % (TrackEval: exactly 80 % counts as partly tracked). As in
    TrackEval, a frame with no predictions (or no objects) is skipped: it breaks no track and starts no fragment.
    """
    n = seq.num_gt_ids
    gt_count, matched_count, frag_count = np.zeros(n), np.zeros(n), np.zeros(n)
    last_pred = np.full(n, np.nan)  # prediction id at each object's last match: decides ID switches
    prev_pred = np.full(n, np.nan)  # prediction id in the previous scored frame: preferred in matching
    tp = fn = fp = idsw = 0
    iou_sum = 0.0
    for gt_ids, pred_ids, similarity in zip(seq.gt_ids, seq.pred_ids, seq.similarity, strict=True):
        # As in TrackEval, a frame without objects or without predictions leaves prev_pred as it was.
        if len(gt_ids) == 0:
            fp += len(pred_ids)
            continue
        gt_count[gt_ids] += 1
        if len(pred_ids) == 0:
            fn += len(gt_ids)
            continue
        score = 1000.0 * (pred_ids[None, :] == prev_pred[gt_ids][:, None]) + similarity
        score[similarity < threshold - EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        kept = score[rows, cols] > EPS
        rows, cols = rows[kept], cols[kept]
        matched_gt, matched_pred = gt_ids[rows], pred_ids[cols]
        before = last_pred[matched_gt]
        idsw += int(np.sum(~np.isnan(before) & (matched_pred != before)))
        matched_count[matched_gt] += 1
        was_tracked = ~np.isnan(prev_pred)
        last_pred[matched_gt] = matched_pred
        prev_pred[:] = np.nan
        prev_pred[matched_gt] = matched_pred
        frag_count += ~was_tracked & ~np.isnan(prev_pred)  # a new stretch of tracking starts
        tp += len(rows)
        fn += len(gt_ids) - len(rows)
        fp += len(pred_ids) - len(rows)
        iou_sum += float(similarity[rows, cols].sum())
    seen = gt_count > 0
    ratio = matched_count[seen] / gt_count[seen]
    mt = int(np.sum(ratio > 0.8))
    pt = int(np.sum(ratio >= 0.2)) - mt
    gt_boxes = tp + fn
    return {
        "TP": tp,
        "FN": fn,
        "FP": fp,
        "IDSW": idsw,
        "Frag": int(np.sum(frag_count[frag_count > 0] - 1)),
        "MT": mt,
        "PT": pt,
        "ML": n - mt - pt,
        "MOTP": iou_sum / max(1, tp),
        # TrackEval returns 0 for a sequence without ground truth (its early exit) instead of -FP.
        "MOTA": (tp - fp - idsw) / max(1, gt_boxes) if gt_boxes else 0.0,
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, gt_boxes),
    }


def identity_scores(seq: PreparedSequence, threshold: float = 0.5) -> dict[str, float]:
    """IDTP, IDFP, IDFN and IDF1, IDP, IDR from one global bipartite matching of ground-truth and predicted ids.

    A (gt id, prediction id) pair earns an identity true positive for every frame where both are present with
    IoU >= ``threshold``; ids may stay unmatched. The matching minimises IDFN + IDFP (= maximises IDTP).
    """
    n, m = seq.num_gt_ids, seq.num_pred_ids
    overlap = np.zeros((n, m))
    gt_count, pred_count = np.zeros(n), np.zeros(m)
    for gt_ids, pred_ids, similarity in zip(seq.gt_ids, seq.pred_ids, seq.similarity, strict=True):
        rows, cols = np.nonzero(similarity >= threshold)
        np.add.at(overlap, (gt_ids[rows], pred_ids[cols]), 1)
        gt_count[gt_ids] += 1
        pred_count[pred_ids] += 1
    # (n + m) square problem: gt id i may take prediction j or its own dummy column m + i, and prediction j
    # its own dummy row n + j; a pair costs the boxes it leaves unmatched on both sides.
    fn_cost, fp_cost = np.zeros((n + m, n + m)), np.zeros((n + m, n + m))
    fp_cost[n:, :m] = 1e10
    fn_cost[:n, m:] = 1e10
    fn_cost[:n, :m] = gt_count[:, None] - overlap
    fn_cost[np.arange(n), m + np.arange(n)] = gt_count
    fp_cost[:n, :m] = pred_count[None, :] - overlap
    fp_cost[n + np.arange(m), np.arange(m)] = pred_count
    rows, cols = linear_sum_assignment(fn_cost + fp_cost)
    idfn = int(round(fn_cost[rows, cols].sum()))
    idfp = int(round(fp_cost[rows, cols].sum()))
    idtp = int(round(gt_count.sum())) - idfn
    return {
        "IDTP": idtp,
        "IDFP": idfp,
        "IDFN": idfn,
        "IDF1": idtp / max(1.0, idtp + 0.5 * idfp + 0.5 * idfn),
        "IDP": idtp / max(1, idtp + idfp),
        "IDR": idtp / max(1, idtp + idfn),
    }


def hota_scores(seq: PreparedSequence) -> dict[str, np.ndarray]:
    """HOTA, DetA, AssA, LocA, DetRe, DetPr, AssRe, AssPr: one float64 value per alpha in :data:`ALPHAS`.

    Ids are first aligned globally (how much each gt id / prediction id pair co-occurs, weighted by IoU); each
    frame then takes the Hungarian matching that maximises alignment x IoU, and a matched pair counts as a
    true positive at every alpha its IoU reaches. The published numbers are the means over alpha.
    """
    n, m, k = seq.num_gt_ids, seq.num_pred_ids, len(ALPHAS)
    potential = np.zeros((n, m))
    gt_count, pred_count = np.zeros((n, 1)), np.zeros((1, m))
    for gt_ids, pred_ids, similarity in zip(seq.gt_ids, seq.pred_ids, seq.similarity, strict=True):
        denom = similarity.sum(0)[None, :] + similarity.sum(1)[:, None] - similarity
        sim_iou = np.zeros_like(similarity)
        valid = denom > EPS
        sim_iou[valid] = similarity[valid] / denom[valid]
        potential[gt_ids[:, None], pred_ids[None, :]] += sim_iou
        gt_count[gt_ids] += 1
        pred_count[0, pred_ids] += 1
    with np.errstate(divide="ignore", invalid="ignore"):
        alignment = potential / (gt_count + pred_count - potential)

    tp, fn, fp, loc_sum = np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k)
    pairs_gt, pairs_pred, pairs_iou = [], [], []  # every matched pair of every frame, for association
    for gt_ids, pred_ids, similarity in zip(seq.gt_ids, seq.pred_ids, seq.similarity, strict=True):
        if len(gt_ids) == 0 or len(pred_ids) == 0:
            fp += len(pred_ids)
            fn += len(gt_ids)
            continue
        score = alignment[gt_ids[:, None], pred_ids[None, :]] * similarity
        rows, cols = linear_sum_assignment(-score)
        iou = similarity[rows, cols]
        hit = iou[None, :] >= ALPHAS[:, None] - EPS  # (alphas, matches)
        tp += hit.sum(1)
        fn += len(gt_ids) - hit.sum(1)
        fp += len(pred_ids) - hit.sum(1)
        loc_sum += (hit * iou[None, :]).sum(1)
        pairs_gt.append(gt_ids[rows])
        pairs_pred.append(pred_ids[cols])
        pairs_iou.append(iou)

    ass_a, ass_re, ass_pr = np.zeros(k), np.zeros(k), np.zeros(k)
    if pairs_gt:
        g, p, iou = np.concatenate(pairs_gt), np.concatenate(pairs_pred), np.concatenate(pairs_iou)
        for a, alpha in enumerate(ALPHAS):
            hit = iou >= alpha - EPS
            # matches of each (gt id, prediction id) pair at this alpha: TrackEval's matches_count, kept sparse
            keys, count = np.unique(g[hit] * m + p[hit], return_counts=True)
            gi, pi = keys // m, keys % m
            gc, pc = gt_count[gi, 0], pred_count[0, pi]
            total = max(1.0, tp[a])
            ass_a[a] = np.sum(count * count / np.maximum(1, gc + pc - count)) / total
            ass_re[a] = np.sum(count * count / np.maximum(1, gc)) / total
            ass_pr[a] = np.sum(count * count / np.maximum(1, pc)) / total

    det_a = tp / np.maximum(1, tp + fn + fp)
    return {
        "HOTA": np.sqrt(det_a * ass_a),
        "DetA": det_a,
        "AssA": ass_a,
        "LocA": np.maximum(1e-10, loc_sum) / np.maximum(1e-10, tp),
        "DetRe": tp / np.maximum(1, tp + fn),
        "DetPr": tp / np.maximum(1, tp + fp),
        "AssRe": ass_re,
        "AssPr": ass_pr,
        "HOTA_TP": tp,
        "HOTA_FN": fn,
        "HOTA_FP": fp,
    }
