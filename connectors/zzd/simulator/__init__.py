"""A simulated Zhengzhengding tenant: the contract of zzd-api.md, served over HTTP for tests and demos."""

from connectors.zzd.simulator.admin import SimAdmin
from connectors.zzd.simulator.app import create_app
from connectors.zzd.simulator.server import SimulatorServer, serve
from connectors.zzd.simulator.tenant import Faults, SimTenant

__all__ = ["Faults", "SimAdmin", "SimTenant", "SimulatorServer", "create_app", "serve"]
