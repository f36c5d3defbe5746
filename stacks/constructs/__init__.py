"""One construct per capability; `stacks/billing_stack.py` composes them."""
