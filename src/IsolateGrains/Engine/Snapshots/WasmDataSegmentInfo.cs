namespace IsolateGrains.Engine.Snapshots;

/// <summary>One data segment of a module, as found in its data section.</summary>
/// <param name="Index">The segment's index, as used by <c>memory.init</c> and <c>data.drop</c>.</param>
/// <param name="IsPassive">
/// True for a passive segment (copied only by <c>memory.init</c>); false for an active one (copied into memory at instantiation).
/// </param>
/// <param name="MemoryIndex">The memory an active segment initializes (0 for passive segments).</param>
/// <param name="Offset">
/// The offset of an active segment when its offset expression is a single <c>i32.const</c> or <c>i64.const</c>;
/// null for passive segments and for computed offsets (e.g. <c>global.get</c> of an imported base).
/// </param>
/// <param name="ContentStart">Absolute module offset of the segment's first content byte.</param>
/// <param name="Length">The number of content bytes.</param>
/// <param name="EntryStart">Absolute module offset where the segment's encoding starts (its flags), for verbatim copies.</param>
/// <param name="EntryEnd">Absolute module offset just past the segment's encoding.</param>
internal sealed record WasmDataSegmentInfo(
    int Index,
    bool IsPassive,
    int MemoryIndex,
    long? Offset,
    int ContentStart,
    int Length,
    int EntryStart,
    int EntryEnd);
