// Grain interfaces arrive with the grain issue; the project exists so the layout is stable.
