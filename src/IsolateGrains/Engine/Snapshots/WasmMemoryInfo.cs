namespace IsolateGrains.Engine.Snapshots;

/// <summary>A linear memory defined (not imported) by a module.</summary>
/// <param name="Index">The absolute memory index (imported memories come first).</param>
/// <param name="MinimumPages">The initial size, in pages.</param>
/// <param name="MaximumPages">The maximum size in pages, or null when unbounded.</param>
/// <param name="IsShared">Whether the memory is shared between threads.</param>
/// <param name="Is64Bit">Whether the memory is indexed by i64 (memory64 proposal).</param>
/// <param name="PageSizeLog2">The base-2 logarithm of the page size: 16 (64 KiB) unless the custom-page-sizes proposal says otherwise.</param>
internal sealed record WasmMemoryInfo(int Index, ulong MinimumPages, ulong? MaximumPages, bool IsShared, bool Is64Bit, int PageSizeLog2);
