namespace IsolateGrains.Engine.Snapshots;

/// <summary>The value of one mutable global of a sandbox, as a snapshot carries it.</summary>
/// <param name="Index">The global's absolute index in the module (its export is <c>__ig_global_</c> + index).</param>
/// <param name="Type">Its value type.</param>
/// <param name="Bits">Its value: the integer for i32 and i64, the IEEE 754 bits for f32 (low 32 bits) and f64.</param>
internal readonly record struct SnapshotGlobal(int Index, WasmValueType Type, long Bits);
