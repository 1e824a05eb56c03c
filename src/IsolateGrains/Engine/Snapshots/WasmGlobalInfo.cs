namespace IsolateGrains.Engine.Snapshots;

/// <summary>A global defined (not imported) by a module.</summary>
/// <param name="Index">
/// The absolute global index, as used by <c>global.get</c>: imported globals come first in the index space,
/// so the first defined global's index is the number of imported globals.
/// </param>
/// <param name="Type">The value type.</param>
/// <param name="IsMutable">Whether <c>global.set</c> may change it (only mutable globals need to be snapshotted).</param>
internal sealed record WasmGlobalInfo(int Index, WasmValueType Type, bool IsMutable);

/// <summary>Converts a global's value to and from the raw bits images and snapshots store.</summary>
internal static class WasmGlobalBits
{
    /// <summary>The raw bits of a global's value (as Wasmtime returns it).</summary>
    public static long From(object? value) => value switch
    {
        int i => i,
        long l => l,
        float f => BitConverter.SingleToInt32Bits(f),
        double d => BitConverter.DoubleToInt64Bits(d),
        _ => throw new NotSupportedException($"A global of type {value?.GetType().Name ?? "null"} cannot be captured."),
    };

    /// <summary>The value of <paramref name="type"/> whose raw bits are <paramref name="bits"/>.</summary>
    public static object To(WasmValueType type, long bits) => type switch
    {
        WasmValueType.I32 => (int)bits,
        WasmValueType.I64 => bits,
        WasmValueType.F32 => BitConverter.Int32BitsToSingle((int)bits),
        _ => BitConverter.Int64BitsToDouble(bits),
    };
}
