"""The moving part's rigid motion read from point tracks in the user's clip, before any render.

Corners of the object at rest are tracked frame to frame (DIS optical flow, forward-backward
checked, so a point that is covered or uncovered is dropped rather than dragged along). The points
that move beyond the clip's noise are the part; lifted to 3D by the rest render's depth, per-frame
poses (PnP, RANSAC) keep the points that move rigidly and give first guesses. Two joint models are
then fitted to all frames at once, each point's depth free near the render's (the rest depth is
the reconstruction's, not the part's): a slide (one direction, a displacement per frame) and a turn
(one line, an angle per frame). When the slide leaves at least ``REVOLUTE_RATIO`` times the turn's
residual the part turns; when it explains the tracks nearly as well over a long run, it slides;
else there is no verdict. Nothing here knows what the object is: only how its points move.

Frames: the camera's (OpenCV: x right, y down, z forward) at rest; results in the base frame.
"""

from __future__ import annotations

import numpy as np

from stages._shared.camera import Camera

#: Corners detected at rest (at most), their least quality (share of the strongest) and spacing (px).
MAX_POINTS = 800
QUALITY = 0.01
MIN_SPACING_PX = 3
#: Forward-backward disagreement (px) above which a tracked point is dropped.
MAX_FB_ERROR_PX = 1.0
#: A point moves when its displacement exceeds this (px) and this many times the 20th percentile point's.
MIN_MOVE_PX = 2.0
NOISE_FACTOR = 4.0
#: Fewest moving points for a pose; most points the joint models are fitted to.
MIN_POINTS = 8
MAX_MODEL_POINTS = 80
#: Least motion (px, 90th percentile of the tracked displacements) for a verdict: below it a
#: turn about a far line and a slide move points alike.
MIN_VERDICT_PX = 20.0
#: A verdict needs a model that explains the tracks within this median residual (px).
MAX_RESIDUAL_PX = 1.5
#: Least motion (px) for a slide's verdict: a door turned a little moves its points along
#: nearly straight lines; a longer straight run is a slide.
MIN_SLIDE_PX = 40.0
#: Reprojection error (px) of a RANSAC inlier; share of its poses a point must be an inlier of.
RANSAC_PX = 2.0
RIGID_SHARE = 0.75
#: The verdict compares the joint models' median residuals (px): revolute when the slide's is at
#: least ``REVOLUTE_RATIO`` times the turn's and the turn spans ``MIN_TURN_DEG``; prismatic when it
#: is at most ``PRISMATIC_RATIO`` times; between the two the tracks cannot tell (set on the
#: third-party set's development half).
MIN_TURN_DEG = 4.0
REVOLUTE_RATIO = 2.0
#: A turn can mimic a slide (a far line), so a ratio below this is a failed turn fit: no verdict.
MIN_RATIO = 0.8
PRISMATIC_RATIO = 1.3
#: Residual (px) that a 10 % change of a point's rest depth costs in the joint models' fits.
DEPTH_PRIOR_PX = 1.0


def track_points(frames: list[np.ndarray], region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corners of ``region`` in frame 0 tracked through the clip.

    Parameters
    ----------
    frames : list of (H, W, 3) uint8
      RGB frames, frame 0 at rest.
    region : (H, W) bool
      Where to look for corners in frame 0 (the object at rest).

    Returns
    -------
    tracks : (T, N, 2) float
      (x, y) pixel positions (OpenCV convention: pixel centres at integers) per frame.
    alive : (T, N) bool
      Whether point n is still tracked reliably in frame t (once lost, lost for good).
    """
    import cv2

    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    p0 = cv2.goodFeaturesToTrack(grey[0], MAX_POINTS, QUALITY, MIN_SPACING_PX, mask=region.astype(np.uint8))
    T, (H, W) = len(frames), region.shape
    if p0 is None:
        return np.zeros((T, 0, 2)), np.zeros((T, 0), bool)
    p0 = p0.reshape(-1, 2).astype(np.float32)
    tracks = np.zeros((T, len(p0), 2), np.float32)
    alive = np.zeros((T, len(p0)), bool)
    tracks[0], alive[0] = p0, True
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    for t in range(1, T):  # chained: small steps track what a door's turn foreshortens
        prev = tracks[t - 1]
        fwd = dis.calc(grey[t - 1], grey[t], None)
        bwd = dis.calc(grey[t], grey[t - 1], None)
        nxt = prev + _sample(fwd, prev)
        back = nxt + _sample(bwd, nxt)
        fb = np.linalg.norm(back - prev, axis=1)
        inside = (nxt[:, 0] >= 0) & (nxt[:, 0] <= W - 1) & (nxt[:, 1] >= 0) & (nxt[:, 1] <= H - 1)
        tracks[t] = np.where(alive[t - 1, :, None], nxt, prev)
        alive[t] = alive[t - 1] & inside & (fb < MAX_FB_ERROR_PX)
    return tracks.astype(np.float64), alive


def _sample(flow: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, 2) of an (H, W, 2) flow field at (x, y) points ``xy`` (N, 2)."""
    import cv2

    m = xy.astype(np.float32).reshape(-1, 1, 2)
    return cv2.remap(flow, m[..., 0], m[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, 2)


def motion_from_tracks(frames: list[np.ndarray], camera: Camera, depth: np.ndarray, lines: tuple = ()) -> dict:
    """The type, axis and pivot of what moves in the clip, from its point tracks.

    Parameters
    ----------
    frames : list of (H, W, 3) uint8
      The clip at ``camera``'s size, frame 0 at rest; one part moves.
    camera : Camera
      The photo's camera, posed in the base frame.
    depth : (H, W) float
      Camera-frame z of the object at rest (the rest render), metres; ``inf`` off the object.
    lines : sequence of (joint_type, axis_base, origin_base)
      More starts for the joint models' fits (e.g. the part box's edges and axes), base frame.

    Returns
    -------
    dict
      ``verdict`` (``revolute``, ``prismatic`` or None: the tracks cannot tell), ``points``
      (tracked), ``moving``, ``noise_px``; once the models are fitted ``observations``,
      ``moved_px`` (90th percentile displacement), ``turn_deg`` (the turn model's angle range),
      ``residual_revolute_px`` / ``residual_prismatic_px`` (median reprojection errors) and
      ``residual_ratio``; with a verdict ``axis_base`` (unit; the turn's axis, or the slide's
      direction) and for revolute ``origin_base`` (a point on the axis, metres).
    """
    import cv2

    out: dict = {"verdict": None, "points": 0, "moving": 0}
    region = np.isfinite(depth)
    tracks, alive = track_points(frames, region)
    out["points"] = int(tracks.shape[1])
    if tracks.shape[1] < MIN_POINTS:
        return out
    # how far each point got from rest, at its last tracked frame
    t_last = alive.shape[0] - 1 - np.argmax(alive[::-1], axis=0)  # (N,)
    disp = np.linalg.norm(tracks[t_last, np.arange(tracks.shape[1])] - tracks[0], axis=1)
    noise = float(np.percentile(disp, 20))  # some of the object stays put
    moving = disp > max(MIN_MOVE_PX, NOISE_FACTOR * noise)
    out.update(moving=int(moving.sum()), noise_px=round(noise, 3))
    if moving.sum() < MIN_POINTS:
        return out
    chosen = np.nonzero(moving)[0]
    if len(chosen) > MAX_MODEL_POINTS:  # evenly thinned: the fits' cost grows with the points
        chosen = chosen[np.linspace(0, len(chosen) - 1, MAX_MODEL_POINTS).round().astype(int)]
    tr, al = tracks[:, chosen], alive[:, chosen]
    xy0 = tr[0]
    z = depth[np.clip(np.rint(xy0[:, 1]).astype(int), 0, depth.shape[0] - 1),
              np.clip(np.rint(xy0[:, 0]).astype(int), 0, depth.shape[1] - 1)]  # fmt: skip
    K = camera.K
    ok3 = np.isfinite(z)
    # OpenCV pixel centres at integers, ours at +0.5: back-project with the same convention as project()
    rays = np.column_stack([(xy0[:, 0] + 0.5 - K[0, 2]) / K[0, 0], (xy0[:, 1] + 0.5 - K[1, 2]) / K[1, 1], np.ones(len(xy0))])
    X = rays * np.where(ok3, z, 0.0)[:, None]  # (M, 3) camera frame at rest
    Kcv = K.copy()
    Kcv[0, 2] -= 0.5
    Kcv[1, 2] -= 0.5
    rvec, tvec = np.zeros(3), np.zeros(3)
    poses = {}
    for t in range(1, len(frames)):  # one pose per frame, each starting from the last
        use = al[t] & ok3
        if use.sum() < MIN_POINTS:
            continue
        found, r, tv, inl = cv2.solvePnPRansac(
            X[use], tr[t, use], Kcv, None, rvec.copy(), tvec.copy(), useExtrinsicGuess=True,
            iterationsCount=200, reprojectionError=RANSAC_PX, flags=cv2.SOLVEPNP_ITERATIVE,
        )  # fmt: skip
        if not found or inl is None or len(inl) < MIN_POINTS:
            continue
        idx = np.nonzero(use)[0][inl.ravel()]
        r, tv = cv2.solvePnPRefineLM(X[idx], tr[t, idx], Kcv, None, r, tv)
        rvec, tvec = r.ravel(), tv.ravel()
        poses[t] = (rvec.copy(), tvec.copy(), idx)
    if not poses:
        return out
    # the whole clip under each joint model (one line or one direction for all frames), each
    # point's depth free within a weak prior: the rest depth is the reconstruction's, not the part's
    obs_t, obs_n = np.nonzero(al[1:] & ok3[None])
    obs_t = obs_t + 1
    # rigid points: RANSAC inliers of most poses that used them (an occluding edge's T-junction
    # slides along the part's outline, it is not on the part)
    used = np.zeros(len(X)), np.zeros(len(X))
    for t, (_, _, idx) in poses.items():
        used[0][al[t] & ok3] += 1
        used[1][idx] += 1
    inl = np.nonzero((used[0] > 0) & (used[1] >= RIGID_SHARE * used[0]))[0]
    if len(inl) < MIN_POINTS:
        return out
    keep = np.isin(obs_n, inl)
    obs_t, obs_n = obs_t[keep], obs_n[keep]
    xy_obs = tr[obs_t, obs_n]
    disp_obs = np.linalg.norm(xy_obs - tr[0, obs_n], axis=1)
    top_t = max(poses, key=lambda t: np.median(np.linalg.norm(tr[t, poses[t][2]] - tr[0, poses[t][2]], axis=1)))
    rv, tv, _ = poses[top_t]
    R = cv2.Rodrigues(rv)[0]
    axis0, pivot0 = _screw_axis(R, tv)
    rotvecs = np.array([poses[t][0] if t in poses else np.zeros(3) for t in range(1, len(frames))])
    shifts = np.array([poses[t][1] + (cv2.Rodrigues(poses[t][0])[0] - np.eye(3)) @ X[inl].mean(axis=0) if t in poses
                       else np.zeros(3) for t in range(1, len(frames))])  # fmt: skip
    direction0 = np.linalg.svd(shifts, full_matrices=False)[2][0]
    n_pts = len(X)
    # starts: the rest-to-most-moved pose's screw and mean shift, and the part box's lines
    T_cb = camera.T_camera_base
    starts = [("revolute", axis0, pivot0), ("prismatic", direction0, None)]
    for kind, a_base, o_base in lines:
        a_cam = T_cb[:3, :3] @ np.asarray(a_base, float)
        p_cam = T_cb[:3, :3] @ np.asarray(o_base, float) + T_cb[:3, 3] if kind == "revolute" else None
        starts.append((kind, a_cam, p_cam))
    fits = {}
    for kind, a_cam, p_cam in starts:  # rigid depths first: quick, to rank the starts
        amounts = (rotvecs if kind == "revolute" else shifts) @ a_cam  # each pose's turn about / shift along it
        f = _fit_model(kind, X, obs_t, obs_n, xy_obs, Kcv, a_cam, p_cam, amounts, n_pts, free_depth=False)
        if kind not in fits or f["cost"] < fits[kind]["cost"]:
            fits[kind] = f
    for kind, f in list(fits.items()):  # the best start of each type, each point's depth free
        fits[kind] = _fit_model(kind, X, obs_t, obs_n, xy_obs, Kcv, f["axis"], f["pivot"], f["amounts"], n_pts)
    e = {k: float(np.median(f["errors"])) for k, f in fits.items()}
    turn = float(np.degrees(np.ptp(np.concatenate([[0.0], fits["revolute"]["amounts"]]))))
    out.update(observations=int(len(obs_t)), moved_px=round(float(np.percentile(disp_obs, 90)), 2),
               turn_deg=round(turn, 3), residual_revolute_px=round(e["revolute"], 3),
               residual_prismatic_px=round(e["prismatic"], 3))  # fmt: skip
    R_bc, t_bc = camera.pose[:3, :3], camera.pose[:3, 3]
    if out["moved_px"] < MIN_VERDICT_PX or min(e.values()) > MAX_RESIDUAL_PX:
        return out  # too little motion to tell, or tracks no rigid motion explains
    ratio = e["prismatic"] / max(e["revolute"], 1e-9)
    out["residual_ratio"] = round(ratio, 3)
    if turn >= MIN_TURN_DEG and ratio >= REVOLUTE_RATIO:
        f = fits["revolute"]
        out.update(verdict="revolute", axis_base=(R_bc @ f["axis"]).tolist(), origin_base=(R_bc @ f["pivot"] + t_bc).tolist())
    elif MIN_RATIO <= ratio <= PRISMATIC_RATIO and out["moved_px"] >= MIN_SLIDE_PX:
        out.update(verdict="prismatic", axis_base=(R_bc @ fits["prismatic"]["axis"]).tolist())
    return out


def _fit_model(kind, X, obs_t, obs_n, xy_obs, K, axis0, pivot0, amounts0, n_pts, free_depth=True) -> dict:
    """Least-squares fit of one joint model to the tracks (soft L1, pixels).

    ``prismatic``: X_t = X + s_t d; ``revolute``: X_t = p + R(a, theta_t)(X - p). Each point's depth
    scales by exp(delta_n), delta_n held near 0 (``DEPTH_PRIOR_PX`` px of residual per 10 %),
    unless ``free_depth`` is False (the rest depths as given: a quick fit to rank starts).
    """
    from scipy.optimize import least_squares

    T1 = len(amounts0)
    revolute = kind == "revolute"

    def unpack(v):
        a = v[:3] / max(np.linalg.norm(v[:3]), 1e-12)
        p = v[3:6] if revolute else None
        off = 6 if revolute else 3
        return a, p, v[off : off + T1], v[off + T1 :] if free_depth else np.zeros(n_pts)

    def predict(v):
        a, p, amounts, delta = unpack(v)
        Xn = X[obs_n] * np.exp(delta[obs_n])[:, None]
        m = amounts[obs_t - 1]
        if revolute:
            r = Xn - p
            c, s = np.cos(m)[:, None], np.sin(m)[:, None]
            Xt = p + r * c + np.cross(a, r) * s + a * (r @ a)[:, None] * (1 - c)
        else:
            Xt = Xn + m[:, None] * a
        z = np.maximum(Xt[:, 2], 1e-9)
        return np.column_stack([K[0, 0] * Xt[:, 0] / z + K[0, 2], K[1, 1] * Xt[:, 1] / z + K[1, 2]])

    def residuals(v):
        a, p, _, delta = unpack(v)
        gauge = [10.0 * (np.linalg.norm(v[:3]) - 1.0)] + ([float(p @ a) * 1e-3] if revolute else [])
        prior = DEPTH_PRIOR_PX * delta / 0.1 if free_depth else []
        return np.concatenate([(predict(v) - xy_obs).ravel(), prior, gauge])

    start = np.concatenate([axis0, pivot0 if revolute else [], amounts0, np.zeros(n_pts) if free_depth else []])
    sol = least_squares(residuals, start, loss="soft_l1", f_scale=1.0, max_nfev=200)
    a, p, amounts, _ = unpack(sol.x)
    errors = np.linalg.norm(predict(sol.x) - xy_obs, axis=1)
    if revolute:
        p = p - (p @ a) * a
    return {"axis": a, "pivot": p, "amounts": amounts, "errors": errors, "cost": float(sol.cost)}


def _screw_axis(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit axis and the point on it nearest the camera-frame origin of the rotation x -> R x + t."""
    import cv2

    rv = cv2.Rodrigues(R)[0].ravel()
    axis = rv / max(np.linalg.norm(rv), 1e-12)
    # points p on the axis satisfy (I - R) p = t - (t . a) a; take the least-norm solution
    rhs = t - np.dot(t, axis) * axis
    pivot = np.linalg.lstsq(np.eye(3) - R, rhs, rcond=None)[0]
    return axis, pivot - np.dot(pivot, axis) * axis
