"""Makes pygame unimportable in this process, as on a machine without it (for tests of an environment
whose renderer is missing): ``env.id = "without_pygame:CartPole-v1"`` imports this module first."""

import sys

sys.modules["pygame"] = None  # `import pygame` now raises ImportError, whether or not pygame is installed
