"""eicil: excitatory (surrogate-gradient) and inhibitory (STDP + backprop) cycle learning for SNNs."""
__version__ = "0.1.0"
