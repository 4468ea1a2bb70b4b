"""UnitCrowd's lab: the load benchmark, the engine bench and its GPU check, the paint bench, the
precision probe. It may import anything of the product; nothing of the product imports it."""
