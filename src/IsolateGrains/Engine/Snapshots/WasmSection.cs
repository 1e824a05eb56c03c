namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// Where one section lies in a module's bytes. Offsets are absolute so that the rewriter can copy a section
/// it does not change byte for byte, header included.
/// </summary>
/// <param name="Id">The section identifier.</param>
/// <param name="Start">Offset of the section's identifier byte.</param>
/// <param name="PayloadStart">Offset of the first payload byte (after the identifier and the size).</param>
/// <param name="End">Offset just past the payload.</param>
internal readonly record struct WasmSection(WasmSectionId Id, int Start, int PayloadStart, int End)
{
    /// <summary>The payload size in bytes.</summary>
    public int PayloadLength => End - PayloadStart;

    /// <summary>The payload of this section within <paramref name="module"/>.</summary>
    /// <param name="module">The module this section was parsed from.</param>
    public ReadOnlySpan<byte> Payload(ReadOnlySpan<byte> module) => module[PayloadStart..End];

    /// <summary>The whole encoded section (identifier, size and payload) within <paramref name="module"/>.</summary>
    /// <param name="module">The module this section was parsed from.</param>
    public ReadOnlySpan<byte> Encoded(ReadOnlySpan<byte> module) => module[Start..End];

    /// <summary>A reader over the payload whose error messages carry absolute module offsets.</summary>
    /// <param name="module">The module this section was parsed from.</param>
    public WasmBinaryReader PayloadReader(ReadOnlySpan<byte> module) => new(Payload(module), PayloadStart);
}
