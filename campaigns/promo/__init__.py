"""Unique promo codes: pools of codes (uploaded or generated), handed out once per delivery
or per workflow run, shown in templates as `$!promo.KEY`."""
