"""Control catalog data: ids and short titles only (see NOTICE for attribution)."""
