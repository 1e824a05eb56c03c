namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// The section structure of a core WebAssembly module: where each section lies, validated for the header,
/// section bounds, known identifiers, uniqueness and order. Section contents are not parsed here.
/// </summary>
internal sealed class WasmModuleLayout
{
    /// <summary>The size of the preamble: the magic <c>\0asm</c> and the version.</summary>
    public const int HeaderSize = 8;

    /// <summary>The preamble of a core module, binary format version 1.</summary>
    private static ReadOnlySpan<byte> CoreHeader => [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00];

    /// <summary>The version and layer field of a component (component model), recognized only to say so clearly.</summary>
    private static ReadOnlySpan<byte> ComponentVersion => [0x0D, 0x00, 0x01, 0x00];

    /// <summary>Creates a layout from parsed sections.</summary>
    /// <param name="sections">The sections in module order.</param>
    private WasmModuleLayout(IReadOnlyList<WasmSection> sections) => Sections = sections;

    /// <summary>All sections, in the order they appear (custom sections included).</summary>
    public IReadOnlyList<WasmSection> Sections { get; }

    /// <summary>Parses the section structure of <paramref name="module"/>.</summary>
    /// <param name="module">A binary core WebAssembly module.</param>
    /// <exception cref="InvalidDataException">The header or the section structure is malformed.</exception>
    public static WasmModuleLayout Parse(ReadOnlySpan<byte> module)
    {
        if (module.Length < HeaderSize)
        {
            throw new InvalidDataException(
                $"Malformed WebAssembly module: {module.Length} bytes is too short for the 8-byte header (magic and version).");
        }

        if (!module[..4].SequenceEqual(CoreHeader[..4]))
        {
            throw new InvalidDataException("Malformed WebAssembly module: it does not start with the magic bytes \\0asm.");
        }

        if (module[4..8].SequenceEqual(ComponentVersion))
        {
            throw new InvalidDataException("Unsupported WebAssembly binary: it is a component, not a core module.");
        }

        if (!module[4..8].SequenceEqual(CoreHeader[4..8]))
        {
            throw new InvalidDataException(
                $"Unsupported WebAssembly binary version {BitConverter.ToUInt32(module[4..8])} (expected 1).");
        }

        var sections = new List<WasmSection>();
        var reader = new WasmBinaryReader(module);
        reader.Skip(HeaderSize);
        var lastOrder = 0;
        WasmSectionId? lastKnown = null;
        while (!reader.IsAtEnd)
        {
            var start = reader.AbsolutePosition;
            var rawId = reader.ReadByte();
            if (rawId > (byte)WasmSectionId.Tag)
            {
                throw new InvalidDataException($"Malformed WebAssembly module at offset {start}: unknown section id {rawId}.");
            }

            var id = (WasmSectionId)rawId;
            var size = reader.ReadCount($"payload bytes of section {id}");
            var payloadStart = reader.AbsolutePosition;
            reader.Skip(size);
            if (id != WasmSectionId.Custom)
            {
                // Non-custom sections appear at most once each, in a fixed order; custom sections go anywhere.
                var order = OrderOf(id);
                if (order <= lastOrder)
                {
                    throw new InvalidDataException(
                        $"Malformed WebAssembly module at offset {start}: section {id} " +
                        (order == lastOrder ? "appears twice." : $"is out of order (it must come before {lastKnown})."));
                }

                lastOrder = order;
                lastKnown = id;
            }

            sections.Add(new WasmSection(id, start, payloadStart, reader.AbsolutePosition));
        }

        return new WasmModuleLayout(sections);
    }

    /// <summary>
    /// The rank of a non-custom section in the mandatory order. It is not the identifier: the data count section
    /// (12) comes before the code section (10), and the tag section (13) between memory (5) and global (6).
    /// </summary>
    /// <param name="id">A non-custom section identifier.</param>
    public static int OrderOf(WasmSectionId id) => id switch
    {
        WasmSectionId.Type => 1,
        WasmSectionId.Import => 2,
        WasmSectionId.Function => 3,
        WasmSectionId.Table => 4,
        WasmSectionId.Memory => 5,
        WasmSectionId.Tag => 6,
        WasmSectionId.Global => 7,
        WasmSectionId.Export => 8,
        WasmSectionId.Start => 9,
        WasmSectionId.Element => 10,
        WasmSectionId.DataCount => 11,
        WasmSectionId.Code => 12,
        WasmSectionId.Data => 13,
        _ => throw new ArgumentOutOfRangeException(nameof(id), id, "Custom sections have no fixed order."),
    };

    /// <summary>The non-custom section with the given identifier, if the module has it.</summary>
    /// <param name="id">A non-custom section identifier.</param>
    public WasmSection? Find(WasmSectionId id)
    {
        foreach (var section in Sections)
        {
            if (section.Id == id)
            {
                return section;
            }
        }

        return null;
    }

    /// <summary>
    /// Where a missing section must be inserted to keep the order valid: right after the last section that
    /// must precede it, so that custom sections following that one (usually none) stay after the new one.
    /// </summary>
    /// <param name="id">A non-custom section identifier the module does not have.</param>
    /// <returns>The index in <see cref="Sections"/> before which to insert.</returns>
    public int InsertionIndexOf(WasmSectionId id)
    {
        var order = OrderOf(id);
        var index = 0;
        for (var i = 0; i < Sections.Count; i++)
        {
            if (Sections[i].Id != WasmSectionId.Custom && OrderOf(Sections[i].Id) < order)
            {
                index = i + 1;
            }
        }

        return index;
    }
}
