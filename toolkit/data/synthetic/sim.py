"""Agent simulation for the synthetic street: pedestrians with a behaviour plan, vehicles that yield.

World metres: x along the street, y across it (road |y| <= road_half_m, sidewalks beyond it on both sides).
Pedestrians spawn at the street ends and follow a plan of tasks -- walk to a point, wait at the kerb (until a
safe gap in traffic), cross, turn around -- drawn from the behaviour mix. Vehicles drive in two opposite lanes
with a simple car-following rule and brake for any pedestrian who is crossing ahead of them; pedestrians only
step onto the road when no vehicle occupies or is about to reach their crossing strip, so vehicles never drive
through them. Each ``step()`` returns a ``SimState`` snapshot (plain arrays) for rendering and labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

BEHAVIOURS = ("walking", "waiting", "crossing", "turning")
WALKING, WAITING, CROSSING, TURNING = range(4)
_TASK_LABEL = {"walk": WALKING, "wait": WAITING, "cross": CROSSING, "turn": TURNING}


@dataclass(frozen=True)
class Layout:
    """Street geometry in metres."""

    road_half_m: float  # the road spans |y| <= road_half_m (two lanes, one per direction)
    sidewalk_m: float  # sidewalk width on each side of the road
    crosswalk_x_m: float  # crosswalk centre along the street
    crosswalk_half_m: float  # half the crosswalk width along the street
    x_min: float  # simulated street extent: agents spawn and leave beyond these ends
    x_max: float

    def lane_y(self, direction: int) -> float:
        """Lane centre for traffic driving towards +x (direction 1, near side) or -x (direction -1)."""
        return -self.road_half_m / 2 if direction > 0 else self.road_half_m / 2


@dataclass(frozen=True)
class Behaviour:
    """Spawn rates and the behaviour mix of new pedestrians (probabilities; the rest walk past)."""

    pedestrians_per_min: float
    vehicles_per_min: float
    max_pedestrians: int
    p_cross: float  # walk to the crosswalk and cross it
    p_jaywalk: float  # cross the road away from the crosswalk
    p_turn: float  # stop and turn back (half of them after waiting at the crosswalk kerb)
    p_wait: float  # a crosswalk user waits at the kerb for a while even when the road is clear


@dataclass
class SimState:
    """One simulation step: all pedestrians and vehicles (visible or not) as arrays."""

    index: int
    time_s: float
    ped_ids: np.ndarray  # (N,) int64
    ped_pos: np.ndarray  # (N, 2) ground metres (feet point)
    ped_heading: np.ndarray  # (N,) radians, direction the body faces
    ped_speed: np.ndarray  # (N,) m/s
    ped_phase: np.ndarray  # (N,) walking-cycle phase, radians
    ped_height: np.ndarray  # (N,) metres
    ped_look: np.ndarray  # (N,) int64 appearance seed
    ped_behaviour: np.ndarray  # (N,) int8 index into BEHAVIOURS
    veh_ids: np.ndarray  # (M,) int64
    veh_pos: np.ndarray  # (M, 2) centre, ground metres
    veh_dir: np.ndarray  # (M,) +1 drives towards +x, -1 towards -x
    veh_size: np.ndarray  # (M, 3) length, width, height in metres
    veh_look: np.ndarray  # (M,) int64 appearance seed


@dataclass
class _Ped:
    id: int
    pos: np.ndarray
    v0: float
    height: float
    look: int
    tasks: list
    gap_s: float
    vel: np.ndarray = field(default_factory=lambda: np.zeros(2))
    heading: float = 0.0
    phase: float = 0.0
    task_t: float = 0.0  # time spent in the current task
    sway: np.ndarray = field(default_factory=lambda: np.zeros(2))  # slowly varying velocity noise, m/s


@dataclass
class _Veh:
    id: int
    x: float
    direction: int
    v0: float
    speed: float
    length: float
    width: float
    height: float
    look: int


class StreetSim:
    """Steps pedestrians and vehicles by ``dt`` seconds; deterministic for a given numpy Generator."""

    def __init__(self, layout: Layout, behaviour: Behaviour, rng: np.random.Generator, dt: float) -> None:
        self.layout, self.behaviour, self.rng, self.dt = layout, behaviour, rng, dt
        self.peds: list[_Ped] = []
        self.vehs: list[_Veh] = []
        self.index = -1
        self._next_id = 1

    # ---- spawning -------------------------------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _sidewalk_y(self, side: int) -> float:
        lay = self.layout
        return side * (lay.road_half_m + 0.4 + self.rng.uniform(0.0, max(lay.sidewalk_m - 0.8, 0.1)))

    def _kerb_y(self, side: int) -> float:
        return side * (self.layout.road_half_m + 0.3)

    def spawn_pedestrian(self) -> None:
        """Add a pedestrian (sometimes a pair walking together) at a street end, with a plan from the mix."""
        lay, rng, beh = self.layout, self.rng, self.behaviour
        side = 1 if rng.random() < 0.5 else -1
        direction = 1 if rng.random() < 0.5 else -1
        end_x = lay.x_max + 1.0 if direction > 0 else lay.x_min - 1.0
        start_x = lay.x_min - 0.5 if direction > 0 else lay.x_max + 0.5
        y0 = self._sidewalk_y(side)
        child = rng.random() < 0.06
        height = rng.uniform(1.1, 1.4) if child else float(np.clip(rng.normal(1.72, 0.09), 1.5, 1.98))
        v0 = float(np.clip(rng.normal(1.3, 0.2), 0.75, 1.9))
        ahead = lambda a: (a - start_x) * direction > 1.5  # noqa: E731 -- a point still ahead of the walker
        xc = lay.crosswalk_x_m + rng.uniform(-lay.crosswalk_half_m + 0.4, lay.crosswalk_half_m - 0.4)
        r = rng.random()
        tasks: list = []
        if r < beh.p_cross and ahead(xc):
            wait = rng.uniform(1.5, 6.0) if rng.random() < beh.p_wait else 0.0
            tasks = self._crossing(xc, side, direction, y0, wait, drift=0.5)
        elif r < beh.p_cross + beh.p_jaywalk:
            xj = start_x + direction * rng.uniform(4.0, max(lay.x_max - lay.x_min - 4.0, 5.0))
            if abs(xj - lay.crosswalk_x_m) > lay.crosswalk_half_m + 3.0 and lay.x_min < xj < lay.x_max:
                tasks = self._crossing(xj, side, direction, y0, rng.uniform(0.0, 1.5), drift=3.0)
        elif r < beh.p_cross + beh.p_jaywalk + beh.p_turn:
            back_x = lay.x_min - 1.0 if direction > 0 else lay.x_max + 1.0
            if rng.random() < 0.5 and ahead(xc):  # walks up to the kerb, waits, changes its mind
                tasks = [
                    ("walk", (xc - direction * 1.0, y0)),
                    ("walk", (xc, self._kerb_y(side))),
                    ("wait", rng.uniform(1.5, 5.0), False),
                    ("turn", rng.uniform(0.8, 1.5)),
                    ("walk", (back_x, self._sidewalk_y(side))),
                ]
            else:
                xt = start_x + direction * rng.uniform(3.0, max(lay.x_max - lay.x_min - 3.0, 4.0))
                if lay.x_min < xt < lay.x_max:
                    tasks = [("walk", (xt, y0)), ("turn", rng.uniform(0.8, 1.5)), ("walk", (back_x, y0))]
        if not tasks and rng.random() < 0.2:  # walks past across the open ground on the camera's side
            y0 = -(lay.road_half_m + lay.sidewalk_m + rng.uniform(3.5, 7.0))
            span = lay.x_max - lay.x_min
            tasks = [
                ("walk", (start_x + direction * span * f, y0 + rng.uniform(-1.5, 1.5))) for f in (0.35, 0.7)
            ]
            tasks.append(("walk", (end_x, y0)))
        if not tasks:
            tasks = [("walk", (end_x, y0))]
        gap_s = float(rng.uniform(3.0, 5.0))
        group = [(0.0, 0.0)]
        if rng.random() < 0.15 and len(self.peds) + 1 < beh.max_pedestrians:
            group.append((-direction * 0.3, 0.6 if rng.random() < 0.5 else -0.6))  # a companion beside them
        for k, (dx, dy) in enumerate(group):
            plan = tasks if k == 0 else [self._beside(task, dy) for task in tasks]
            y = y0 if k == 0 else self._beside(("walk", (start_x, y0)), dy)[1][1]
            ped = _Ped(
                self._new_id(),
                np.array([start_x + dx, y], dtype=np.float64),
                v0,
                height if k == 0 else float(np.clip(rng.normal(1.7, 0.1), 1.45, 1.98)),
                int(rng.integers(1 << 62)),
                plan,
                gap_s,
            )
            ped.heading = 0.0 if direction > 0 else math.pi
            ped.phase = float(rng.uniform(0, 2 * math.pi))
            self.peds.append(ped)

    def _beside(self, task: tuple, dy: float) -> tuple:
        """A companion's version of a task: beside the leader on sidewalks, 0.7 m along at kerbs and crossings."""
        if task[0] not in ("walk", "cross"):
            return task
        x, y = task[1]
        lay = self.layout
        if abs(y) <= lay.road_half_m + 0.35:  # kerb or crossing target
            return (task[0], (x + 0.7, y))
        if abs(y) > lay.road_half_m + lay.sidewalk_m:  # open ground: anywhere beside
            return (task[0], (x, y + dy))
        lo, hi = lay.road_half_m + 0.4, lay.road_half_m + max(lay.sidewalk_m - 0.4, 0.5)
        mag = abs(y) + dy if lo <= abs(y) + dy <= hi else abs(y) - dy
        return (task[0], (x, math.copysign(float(np.clip(mag, lo, hi)), y)))

    def _crossing(self, x: float, side: int, direction: int, y0: float, wait: float, drift: float) -> list:
        lay, rng = self.layout, self.rng
        x_far = x + direction * rng.uniform(0.0, drift) if drift > 1 else x + rng.uniform(-drift, drift)
        after = direction if rng.random() < 0.7 else -direction
        end_x = lay.x_max + 1.0 if after > 0 else lay.x_min - 1.0
        y1 = self._sidewalk_y(-side)
        return [
            ("walk", (x - direction * 1.0, y0)),
            ("walk", (x, self._kerb_y(side))),
            ("wait", wait, True),
            ("cross", (x_far, self._kerb_y(-side))),
            ("walk", (x_far + after * 1.0, y1)),
            ("walk", (end_x, y1)),
        ]

    def spawn_vehicle(self, direction: int) -> None:
        lay, rng = self.layout, self.rng
        x = lay.x_min - 6.0 if direction > 0 else lay.x_max + 6.0
        if any(v.direction == direction and abs(v.x - x) < 14.0 for v in self.vehs):
            return  # the lane entry is occupied; skip this arrival
        van = rng.random() < 0.2
        length, width, height = (
            (rng.uniform(4.8, 5.6), 2.0, rng.uniform(1.9, 2.3))
            if van
            else (rng.uniform(3.8, 4.7), rng.uniform(1.7, 1.85), rng.uniform(1.35, 1.55))
        )
        v0 = rng.uniform(7.0, 12.0)
        self.vehs.append(
            _Veh(self._new_id(), x, direction, v0, v0, length, width, height, int(rng.integers(1 << 62)))
        )

    # ---- behaviour ------------------------------------------------------------------------------------------
    def gap_ok(self, x: float, gap_s: float) -> bool:
        """True when no vehicle occupies, or will reach within ``gap_s`` seconds, the crossing strip at ``x``."""
        for veh in self.vehs:
            ahead = (
                x - veh.x
            ) * veh.direction  # distance from the vehicle centre to the strip, along its travel
            if -(veh.length / 2 + 1.5) < ahead < veh.length / 2 + 1.5:
                return False
            front = ahead - veh.length / 2
            if front > 0 and (
                front < veh.speed**2 / 8.0 + 4.0 or (veh.speed > 0.5 and front / veh.speed < gap_s)
            ):
                return False
        return True

    def _vehicle_obstacle(self, veh: _Veh) -> float:
        """Free distance (m) ahead of the vehicle's front bumper to the nearest thing it must stop for."""
        lay = self.layout
        front = veh.x + veh.direction * veh.length / 2
        best = math.inf
        for other in self.vehs:
            if other is not veh and other.direction == veh.direction:
                gap = (other.x - other.direction * other.length / 2 - front) * veh.direction - 2.0
                if gap > -other.length:
                    best = min(best, gap)
        lane_y = lay.lane_y(veh.direction)
        for ped in self.peds:
            if not ped.tasks or ped.tasks[0][0] != "cross" or abs(ped.pos[1]) > lay.road_half_m + 0.8:
                continue
            vy = ped.tasks[0][1][1] - ped.pos[1]
            past = (ped.pos[1] - lane_y) * np.sign(vy) > lay.road_half_m / 2 + veh.width / 2 + 0.6
            gap = (ped.pos[0] - front) * veh.direction - 2.5
            if not past and gap > -veh.length - 1.0:
                best = min(best, gap)
        return best

    def _step_vehicles(self) -> None:
        dt, lay = self.dt, self.layout
        free = [self._vehicle_obstacle(v) for v in self.vehs]
        for veh, gap in zip(self.vehs, free, strict=True):
            target = min(veh.v0, math.sqrt(2.0 * 3.0 * max(gap, 0.0)))
            accel = float(np.clip((target - veh.speed) / dt, -9.0, 2.5))
            veh.speed = max(0.0, veh.speed + accel * dt)
            veh.x += veh.direction * veh.speed * dt
        self.vehs = [v for v in self.vehs if lay.x_min - 8.0 <= v.x <= lay.x_max + 8.0]

    def _step_pedestrians(self) -> None:
        dt, lay = self.dt, self.layout
        desired = np.zeros((len(self.peds), 2))
        for i, ped in enumerate(self.peds):
            while ped.tasks:
                task = ped.tasks[0]
                kind = task[0]
                if kind in ("walk", "cross"):
                    delta = np.asarray(task[1]) - ped.pos
                    dist = float(np.hypot(*delta))
                    if dist < 0.25:
                        self._next_task(ped)
                        continue
                    speed = ped.v0 * (1.12 if kind == "cross" else 1.0)
                    desired[i] = delta / dist * min(speed, dist / dt)
                elif kind == "wait":
                    done = ped.task_t >= task[1]
                    if done and task[2] and not self.gap_ok(ped.pos[0], ped.gap_s):
                        done = False
                    if done:
                        self._next_task(ped)
                        continue
                    # Waiting pedestrians face the road.
                    ped.heading = _turn_towards(
                        ped.heading, -math.pi / 2 if ped.pos[1] > 0 else math.pi / 2, dt
                    )
                elif kind == "turn":
                    if ped.task_t >= task[1]:
                        self._next_task(ped)
                        continue
                    ped.heading += math.pi / task[1] * dt
                break
        # Soft repulsion keeps walkers from passing through each other on the sidewalk.
        if len(self.peds) > 1:
            pos = np.array([p.pos for p in self.peds])
            diff = pos[:, None, :] - pos[None, :, :]
            dist = np.hypot(diff[..., 0], diff[..., 1]) + np.eye(len(pos)) * 10.0
            push = np.clip(0.9 - dist, 0.0, None) / np.maximum(dist, 1e-3)
            moving = np.hypot(desired[:, 0], desired[:, 1]) > 0.1
            desired += (push[..., None] * diff).sum(axis=1) * 1.5 * moving[:, None]
        alpha = min(1.0, dt / 0.35)
        # Real walkers do not move in straight lines at constant speed: an Ornstein-Uhlenbeck sway
        # (time constant 2 s, about 0.08 m/s) on top of the intended velocity.
        kicks = self.rng.standard_normal((len(self.peds), 2)) * 0.08 * math.sqrt(2.0 * dt / 2.0)
        for ped, want, kick in zip(self.peds, desired, kicks, strict=True):
            ped.sway += -ped.sway * dt / 2.0 + kick
            if np.hypot(*want) > 0.1:
                want = want + ped.sway
            ped.vel += (want - ped.vel) * alpha
            ped.pos = ped.pos + ped.vel * dt
            speed = float(np.hypot(*ped.vel))
            ped.phase = (ped.phase + 2 * math.pi * speed / (0.8 * ped.height) * dt) % (2 * math.pi)
            if speed > 0.25 and ped.tasks and ped.tasks[0][0] != "turn":
                ped.heading = _turn_towards(ped.heading, math.atan2(ped.vel[1], ped.vel[0]), dt)
            ped.task_t += dt
        self.peds = [p for p in self.peds if p.tasks and lay.x_min - 2.0 <= p.pos[0] <= lay.x_max + 2.0]

    @staticmethod
    def _next_task(ped: _Ped) -> None:
        ped.tasks.pop(0)
        ped.task_t = 0.0

    def step(self) -> SimState:
        """Advance one time step and return the snapshot."""
        beh, rng, dt = self.behaviour, self.rng, self.dt
        self.index += 1
        if len(self.peds) < beh.max_pedestrians and rng.random() < beh.pedestrians_per_min / 60.0 * dt:
            self.spawn_pedestrian()
        for direction in (1, -1):
            if rng.random() < beh.vehicles_per_min / 120.0 * dt:
                self.spawn_vehicle(direction)
        self._step_pedestrians()
        self._step_vehicles()
        return self.snapshot()

    def snapshot(self) -> SimState:
        peds, vehs = self.peds, self.vehs
        return SimState(
            index=self.index,
            time_s=self.index * self.dt,
            ped_ids=np.array([p.id for p in peds], dtype=np.int64),
            ped_pos=np.array([p.pos for p in peds], dtype=np.float64).reshape(-1, 2),
            ped_heading=np.array([p.heading for p in peds], dtype=np.float64),
            ped_speed=np.array([np.hypot(*p.vel) for p in peds], dtype=np.float64),
            ped_phase=np.array([p.phase for p in peds], dtype=np.float64),
            ped_height=np.array([p.height for p in peds], dtype=np.float64),
            ped_look=np.array([p.look for p in peds], dtype=np.int64),
            ped_behaviour=np.array([_TASK_LABEL[p.tasks[0][0]] for p in peds], dtype=np.int8),
            veh_ids=np.array([v.id for v in vehs], dtype=np.int64),
            veh_pos=np.array(
                [[v.x, self.layout.lane_y(v.direction)] for v in vehs], dtype=np.float64
            ).reshape(-1, 2),
            veh_dir=np.array([v.direction for v in vehs], dtype=np.int8),
            veh_size=np.array([[v.length, v.width, v.height] for v in vehs], dtype=np.float64).reshape(-1, 3),
            veh_look=np.array([v.look for v in vehs], dtype=np.int64),
        )


def _turn_towards(current: float, target: float, dt: float, rate: float = 6.0) -> float:
    """Rotate an angle towards ``target`` by at most ``rate`` rad/s (shortest way round)."""
    delta = (target - current + math.pi) % (2 * math.pi) - math.pi
    return current + float(np.clip(delta, -rate * dt, rate * dt))
