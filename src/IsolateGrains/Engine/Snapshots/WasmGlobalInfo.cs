namespace IsolateGrains.Engine.Snapshots;

/// <summary>A global defined (not imported) by a module.</summary>
/// <param name="Index">
/// The absolute global index, as used by <c>global.get</c>: imported globals come first in the index space,
/// so the first defined global's index is the number of imported globals.
/// </param>
/// <param name="Type">The value type.</param>
/// <param name="IsMutable">Whether <c>global.set</c> may change it (only mutable globals need to be snapshotted).</param>
internal sealed record WasmGlobalInfo(int Index, WasmValueType Type, bool IsMutable);
