"""The curriculum core: items, reward events, strategies, the simulated student, replay.

Pure Python + numpy: nothing here imports Ray, Redis or HTTP."""
from curriculum.events import EventBatch, RewardEvent
from curriculum.items import Item, ItemPool
from curriculum.params import StrategyParams, TokenBudget
from curriculum.registry import InvalidParams, describe_strategies, make_strategy, strategy_names
from curriculum.strategy import Selection, Strategy

__all__ = ["EventBatch", "RewardEvent", "Item", "ItemPool", "InvalidParams", "describe_strategies",
           "make_strategy", "strategy_names", "Selection", "Strategy", "StrategyParams", "TokenBudget"]
