"""A simulated ConnectWise Manage (`liaison simulate-psa`): state, records, WSGI app."""

from webservice.psa_simulator.app import ConnectWiseSimulator, RunningSimulator, start_simulator
from webservice.psa_simulator.state import State

__all__ = ["ConnectWiseSimulator", "RunningSimulator", "State", "start_simulator"]
