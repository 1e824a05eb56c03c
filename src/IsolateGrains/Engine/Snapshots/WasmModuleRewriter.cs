using System.Globalization;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// Section surgery on binary core WebAssembly modules, written from the binary format specification: reading
/// the defined globals, memories and data segments, exporting the globals a module keeps private, and building a
/// pre-initialized module (the "Wizer in C#" step) whose memory and globals start at a snapshot's values.
/// </summary>
/// <remarks>
/// <para>
/// Only the sections an operation must change are decoded and re-encoded; every other section (types, imports,
/// functions, tables, elements, exports, code, custom sections such as <c>name</c>) is copied byte for byte, in
/// its original position. A section the input lacks but the output needs is inserted at the position the
/// specification's section order requires.
/// </para>
/// <para>
/// Malformed input (bad magic or version, truncated sections, over-long LEB128, sections out of order) throws
/// <see cref="InvalidDataException"/>; well-formed input using something these operations cannot represent
/// (reference-typed globals, imported or 64-bit memories) throws <see cref="NotSupportedException"/>. Full
/// validation (types, code) is left to the engine that compiles the result.
/// </para>
/// </remarks>
internal static class WasmModuleRewriter
{
    /// <summary>The conventional prefix for <see cref="ExportDefinedGlobals"/>, unlikely to clash with a real export.</summary>
    public const string GlobalExportPrefix = "__ig_global_";

    /// <summary>The WebAssembly page size: memory sizes and images are whole multiples of it.</summary>
    public const int PageSize = 65536;

    /// <summary>The export and import kind byte of a global.</summary>
    private const byte GlobalKind = 0x03;

    /// <summary>Data segment flags: active, memory 0, offset expression.</summary>
    private const uint ActiveMemoryZeroSegment = 0;

    /// <summary>Data segment flags: passive.</summary>
    private const uint PassiveSegment = 1;

    /// <summary>Data segment flags: active with an explicit memory index.</summary>
    private const uint ActiveExplicitMemorySegment = 2;

    /// <summary>Returns the globals the module defines (not those it imports), in index order.</summary>
    /// <param name="module">A binary core WebAssembly module.</param>
    /// <exception cref="InvalidDataException">The module is malformed.</exception>
    /// <exception cref="NotSupportedException">A defined global has a type other than i32, i64, f32 or f64.</exception>
    public static IReadOnlyList<WasmGlobalInfo> ReadDefinedGlobals(ReadOnlySpan<byte> module)
    {
        var layout = WasmModuleLayout.Parse(module);
        var imports = CountImports(module, layout);
        return ParseGlobals(module, layout, imports.Globals).ConvertAll(g => g.Info);
    }

    /// <summary>Returns the memories the module defines (not those it imports), in index order.</summary>
    /// <param name="module">A binary core WebAssembly module.</param>
    /// <exception cref="InvalidDataException">The module is malformed.</exception>
    public static IReadOnlyList<WasmMemoryInfo> ReadDefinedMemories(ReadOnlySpan<byte> module)
    {
        var layout = WasmModuleLayout.Parse(module);
        var imports = CountImports(module, layout);
        return ParseMemories(module, layout, imports.Memories);
    }

    /// <summary>Returns the module's data segments, in index order.</summary>
    /// <param name="module">A binary core WebAssembly module.</param>
    /// <exception cref="InvalidDataException">The module is malformed.</exception>
    public static IReadOnlyList<WasmDataSegmentInfo> ReadDataSegments(ReadOnlySpan<byte> module)
    {
        var layout = WasmModuleLayout.Parse(module);
        return ParseDataSegments(module, layout);
    }

    /// <summary>
    /// Returns a copy of the module that additionally exports every defined global as
    /// <paramref name="exportPrefix"/> followed by its absolute index (e.g. <c>__ig_global_0</c>), so that the host
    /// can read and write globals the toolchain kept private, such as Emscripten's stack pointer. Existing exports
    /// are kept unchanged and first; an export section is added if the module has none.
    /// </summary>
    /// <param name="module">A binary core WebAssembly module.</param>
    /// <param name="exportPrefix">The prefix of the new export names.</param>
    /// <returns>The new module (a copy even when the module defines no globals).</returns>
    /// <exception cref="InvalidDataException">The module is malformed.</exception>
    /// <exception cref="NotSupportedException">A defined global has a type other than i32, i64, f32 or f64.</exception>
    /// <exception cref="ArgumentException">
    /// A new name is already exported (export names must be unique), e.g. because the module was already rewritten.
    /// </exception>
    public static byte[] ExportDefinedGlobals(ReadOnlySpan<byte> module, string exportPrefix)
    {
        ArgumentNullException.ThrowIfNull(exportPrefix);
        var layout = WasmModuleLayout.Parse(module);
        var imports = CountImports(module, layout);
        var globals = ParseGlobals(module, layout, imports.Globals);
        if (globals.Count == 0)
        {
            return module.ToArray();
        }

        // Existing exports: their names (to refuse duplicates) and their encoded entries (copied as they are).
        var names = new HashSet<string>(StringComparer.Ordinal);
        var existingCount = 0;
        var existingEntries = ReadOnlySpan<byte>.Empty;
        if (layout.Find(WasmSectionId.Export) is { } exportSection)
        {
            var reader = exportSection.PayloadReader(module);
            existingCount = reader.ReadCount("exports");
            var entriesStart = reader.Position;
            for (var i = 0; i < existingCount; i++)
            {
                names.Add(reader.ReadName());
                reader.ReadByte(); // kind
                reader.ReadVarUInt32(); // index
            }

            reader.ExpectEnd("export section");
            existingEntries = exportSection.Payload(module)[entriesStart..];
        }

        var writer = new WasmBinaryWriter(existingEntries.Length + (globals.Count * (exportPrefix.Length + 8)) + 8);
        writer.WriteVarUInt32(checked((uint)(existingCount + globals.Count)));
        writer.WriteBytes(existingEntries);
        foreach (var global in globals)
        {
            var name = exportPrefix + global.Info.Index.ToString(CultureInfo.InvariantCulture);
            if (!names.Add(name))
            {
                throw new ArgumentException(
                    $"The module already exports a name '{name}'; choose another prefix (was the module already rewritten?).",
                    nameof(exportPrefix));
            }

            writer.WriteName(name);
            writer.WriteByte(GlobalKind);
            writer.WriteVarUInt32((uint)global.Info.Index);
        }

        return Reassemble(module, layout, new Dictionary<WasmSectionId, byte[]> { [WasmSectionId.Export] = writer.ToArray() });
    }

    /// <summary>
    /// Builds a pre-initialized module (what Wizer does, in C#): a copy of <paramref name="module"/> whose instances
    /// start with <paramref name="memoryImage"/> as their memory and with the given globals at the given values, so
    /// that a new instance starts where a booted and warmed one was, without running the boot again.
    /// </summary>
    /// <param name="module">
    /// A binary core WebAssembly module that defines exactly one 32-bit memory with 64 KiB pages (not imported):
    /// the module <paramref name="memoryImage"/> was captured from, or one differing only in exports
    /// (see <see cref="ExportDefinedGlobals"/>).
    /// </param>
    /// <param name="memoryImage">
    /// The whole linear memory of a running instance; its length is a multiple of 64 KiB, and becomes the memory's
    /// new minimum size (the maximum is kept).
    /// </param>
    /// <param name="globalValues">
    /// Defined globals (absolute index) and the values their initializers get: the value for i32 and i64, the
    /// IEEE 754 bits for f32 (low 32 bits) and f64. Globals not listed keep their initializers.
    /// </param>
    /// <returns>The new module.</returns>
    /// <remarks>
    /// <para>
    /// All active data segments are replaced by one active segment at a constant <c>i32.const</c> offset that holds
    /// the image densely, zeros included, from its first non-zero byte rounded down to a 64 KiB boundary to its
    /// last non-zero byte (no segment at all when the image is all zeros). One dense segment is what lets
    /// Wasmtime map the image copy-on-write; with thousands of sparse segments (dotnet.native.wasm has 3,294) it
    /// silently falls back to copying them into every new instance.
    /// </para>
    /// <para>
    /// Passive segments keep their indices, which <c>memory.init</c> and <c>data.drop</c> refer to: an active
    /// segment placed before a passive one becomes an empty passive segment, which behaves exactly like the
    /// dropped active segment it replaces (only zero-length <c>memory.init</c> succeeds; <c>data.drop</c> is a
    /// no-op); active segments after the last passive one are removed, and the dense segment comes last. A module
    /// whose code names a removed segment in <c>data.drop</c> would fail validation when compiled (the code is not
    /// decoded here); toolchains emit that only for passive segments. The data count section, if present, is
    /// updated.
    /// </para>
    /// <para>
    /// A start section is left alone: a start function would run again, over the snapshot, in every new instance.
    /// dotnet.native.wasm has none (Emscripten's initialization is called by the host).
    /// </para>
    /// </remarks>
    /// <exception cref="InvalidDataException">The module is malformed.</exception>
    /// <exception cref="NotSupportedException">
    /// The module imports its memory, defines no memory or several, uses memory64 or custom page sizes, or has a
    /// global of a non-numeric type.
    /// </exception>
    /// <exception cref="ArgumentException">
    /// The image is not a whole number of pages, is smaller than the memory's minimum or larger than its maximum,
    /// or a global index is imported, unknown or listed twice.
    /// </exception>
    public static byte[] BuildPreinitializedModule(
        ReadOnlySpan<byte> module,
        ReadOnlySpan<byte> memoryImage,
        IReadOnlyList<(int GlobalIndex, long Bits)> globalValues)
    {
        ArgumentNullException.ThrowIfNull(globalValues);
        var layout = WasmModuleLayout.Parse(module);
        var imports = CountImports(module, layout);

        // Parse everything first, so that a malformed module is reported as such before any semantic refusal.
        var globals = ParseGlobals(module, layout, imports.Globals);
        var memories = ParseMemories(module, layout, imports.Memories);
        var segments = ParseDataSegments(module, layout);

        var replacements = new Dictionary<WasmSectionId, byte[]>
        {
            [WasmSectionId.Memory] = BuildMemorySection(imports, memories, memoryImage),
        };

        if (globalValues.Count > 0)
        {
            replacements[WasmSectionId.Global] = BuildGlobalSection(module, imports, globals, globalValues);
        }

        var (dataPayload, segmentCount) = BuildDataSection(module, segments, memoryImage);
        if (segmentCount > 0 || layout.Find(WasmSectionId.Data) is not null)
        {
            replacements[WasmSectionId.Data] = dataPayload;
        }

        if (layout.Find(WasmSectionId.DataCount) is not null)
        {
            var count = new WasmBinaryWriter(5);
            count.WriteVarUInt32((uint)segmentCount);
            replacements[WasmSectionId.DataCount] = count.ToArray();
        }

        return Reassemble(module, layout, replacements);
    }

    /// <summary>Encodes the memory section with the single defined memory's minimum raised to the image size.</summary>
    /// <param name="imports">What the module imports.</param>
    /// <param name="memories">The memories it defines.</param>
    /// <param name="memoryImage">The memory image.</param>
    private static byte[] BuildMemorySection(ImportCounts imports, List<WasmMemoryInfo> memories, ReadOnlySpan<byte> memoryImage)
    {
        if (imports.Memories > 0)
        {
            throw new NotSupportedException(
                "The module imports its memory; only a module that defines its single memory can be pre-initialized.");
        }

        if (memories.Count != 1)
        {
            throw new NotSupportedException(
                $"The module defines {memories.Count} memories; pre-initialization needs exactly one.");
        }

        var memory = memories[0];
        if (memory.Is64Bit || memory.PageSizeLog2 != 16)
        {
            throw new NotSupportedException(
                "The module's memory is 64-bit or has a custom page size; only 32-bit memories with 64 KiB pages can be pre-initialized.");
        }

        if (memoryImage.Length % PageSize != 0)
        {
            throw new ArgumentException(
                $"The memory image is {memoryImage.Length} bytes, not a whole number of 64 KiB pages.", nameof(memoryImage));
        }

        var pages = (ulong)(memoryImage.Length / PageSize);
        if (pages < memory.MinimumPages)
        {
            throw new ArgumentException(
                $"The memory image has {pages} pages but the module's memory starts with {memory.MinimumPages}: it cannot come from an instance of this module.",
                nameof(memoryImage));
        }

        if (memory.MaximumPages is { } maximum && pages > maximum)
        {
            throw new ArgumentException(
                $"The memory image has {pages} pages but the module's memory may have at most {maximum}.", nameof(memoryImage));
        }

        var writer = new WasmBinaryWriter(24);
        writer.WriteVarUInt32(1);
        writer.WriteByte((byte)((memory.MaximumPages is null ? 0 : 1) | (memory.IsShared ? 2 : 0)));
        writer.WriteVarUInt32((uint)pages);
        if (memory.MaximumPages is { } max)
        {
            writer.WriteVarUInt32((uint)max);
        }

        return writer.ToArray();
    }

    /// <summary>Encodes the global section with the listed globals' initializers replaced by constants.</summary>
    /// <param name="module">The module.</param>
    /// <param name="imports">What it imports.</param>
    /// <param name="globals">The globals it defines.</param>
    /// <param name="globalValues">The new values.</param>
    private static byte[] BuildGlobalSection(
        ReadOnlySpan<byte> module,
        ImportCounts imports,
        List<GlobalEntry> globals,
        IReadOnlyList<(int GlobalIndex, long Bits)> globalValues)
    {
        var values = new Dictionary<int, long>(globalValues.Count);
        foreach (var (index, bits) in globalValues)
        {
            if (index >= 0 && index < imports.Globals)
            {
                throw new ArgumentException(
                    $"Global {index} is imported; only globals the module defines can be given a snapshot value.", nameof(globalValues));
            }

            if (index < imports.Globals || index >= imports.Globals + globals.Count)
            {
                throw new ArgumentException(
                    $"Global {index} does not exist: the module imports {imports.Globals} and defines {globals.Count} globals.",
                    nameof(globalValues));
            }

            if (!values.TryAdd(index, bits))
            {
                throw new ArgumentException($"Global {index} is given a value twice.", nameof(globalValues));
            }
        }

        var writer = new WasmBinaryWriter(16 + (globals.Count * 12));
        writer.WriteVarUInt32((uint)globals.Count);
        foreach (var global in globals)
        {
            // The global type (value type and mutability) is kept as it was; only the initializer may change.
            writer.WriteBytes(module[global.TypeStart..global.InitStart]);
            if (values.TryGetValue(global.Info.Index, out var bits))
            {
                WasmConstantExpression.WriteConstant(writer, global.Info.Type, bits);
            }
            else
            {
                writer.WriteBytes(module[global.InitStart..global.InitEnd]);
            }
        }

        return writer.ToArray();
    }

    /// <summary>
    /// Encodes the data section: passive segments kept at their indices, then one dense active segment holding the
    /// image's non-zero span (see <see cref="BuildPreinitializedModule"/>).
    /// </summary>
    /// <param name="module">The module.</param>
    /// <param name="segments">Its data segments.</param>
    /// <param name="memoryImage">The memory image.</param>
    /// <returns>The section payload and the number of segments in it.</returns>
    private static (byte[] Payload, int SegmentCount) BuildDataSection(ReadOnlySpan<byte> module, List<WasmDataSegmentInfo> segments, ReadOnlySpan<byte> memoryImage)
    {
        var lastPassive = segments.FindLastIndex(s => s.IsPassive);

        // The dense span: from the first non-zero byte, rounded down to a 64 KiB boundary (so that the segment is
        // page-aligned for a copy-on-write mapping), to the last non-zero byte. Zeros beyond it are the memory's own.
        var first = memoryImage.IndexOfAnyExcept((byte)0);
        var denseStart = first < 0 ? 0 : first & ~(PageSize - 1);
        var dense = first < 0 ? ReadOnlySpan<byte>.Empty : memoryImage[denseStart..(memoryImage.LastIndexOfAnyExcept((byte)0) + 1)];
        var segmentCount = lastPassive + 1 + (first < 0 ? 0 : 1);

        var keptBytes = 0;
        for (var i = 0; i <= lastPassive; i++)
        {
            keptBytes += segments[i].EntryEnd - segments[i].EntryStart;
        }

        var writer = new WasmBinaryWriter(dense.Length + keptBytes + (2 * segmentCount) + 32);
        writer.WriteVarUInt32((uint)segmentCount);
        for (var i = 0; i <= lastPassive; i++)
        {
            if (segments[i].IsPassive)
            {
                writer.WriteBytes(module[segments[i].EntryStart..segments[i].EntryEnd]);
            }
            else
            {
                // An empty passive segment stands in for an active one so that later indices do not move.
                writer.WriteVarUInt32(PassiveSegment);
                writer.WriteVarUInt32(0);
            }
        }

        if (first >= 0)
        {
            writer.WriteVarUInt32(ActiveMemoryZeroSegment);
            writer.WriteByte(WasmConstantExpression.I32Const);
            writer.WriteVarInt32(denseStart);
            writer.WriteByte(WasmConstantExpression.End);
            writer.WriteVarUInt32((uint)dense.Length);
            writer.WriteBytes(dense);
        }

        return (writer.ToArray(), segmentCount);
    }

    /// <summary>Counts the module's imports of each kind: imported items come first in each index space.</summary>
    /// <param name="module">The module.</param>
    /// <param name="layout">Its sections.</param>
    private static ImportCounts CountImports(ReadOnlySpan<byte> module, WasmModuleLayout layout)
    {
        if (layout.Find(WasmSectionId.Import) is not { } section)
        {
            return default;
        }

        var reader = section.PayloadReader(module);
        var count = reader.ReadCount("imports");
        int functions = 0, tables = 0, memories = 0, globals = 0, tags = 0;
        for (var i = 0; i < count; i++)
        {
            reader.ReadName(); // module name
            reader.ReadName(); // field name
            var kind = reader.ReadByte();
            switch (kind)
            {
                case 0x00: // function: type index
                    reader.ReadVarUInt32();
                    functions++;
                    break;
                case 0x01: // table: reference type and limits
                    SkipValueType(ref reader);
                    SkipLimits(ref reader);
                    tables++;
                    break;
                case 0x02: // memory: limits
                    SkipLimits(ref reader);
                    memories++;
                    break;
                case GlobalKind: // global: value type and mutability
                    SkipValueType(ref reader);
                    reader.ReadByte();
                    globals++;
                    break;
                case 0x04: // tag: attribute and type index
                    reader.ReadByte();
                    reader.ReadVarUInt32();
                    tags++;
                    break;
                default:
                    throw reader.Malformed($"import {i} has unknown kind 0x{kind:X2}");
            }
        }

        reader.ExpectEnd("import section");
        return new ImportCounts(functions, tables, memories, globals, tags);
    }

    /// <summary>Parses the global section: each defined global with where its type and initializer lie.</summary>
    /// <param name="module">The module.</param>
    /// <param name="layout">Its sections.</param>
    /// <param name="importedGlobals">How many globals are imported (the first defined global's index).</param>
    private static List<GlobalEntry> ParseGlobals(ReadOnlySpan<byte> module, WasmModuleLayout layout, int importedGlobals)
    {
        var globals = new List<GlobalEntry>();
        if (layout.Find(WasmSectionId.Global) is not { } section)
        {
            return globals;
        }

        var reader = section.PayloadReader(module);
        var count = reader.ReadCount("globals");
        for (var i = 0; i < count; i++)
        {
            var index = checked(importedGlobals + i);
            var typeStart = reader.AbsolutePosition;
            var typeByte = reader.ReadByte();
            var type = typeByte switch
            {
                (byte)WasmValueType.I32 => WasmValueType.I32,
                (byte)WasmValueType.I64 => WasmValueType.I64,
                (byte)WasmValueType.F32 => WasmValueType.F32,
                (byte)WasmValueType.F64 => WasmValueType.F64,
                _ => throw new NotSupportedException(
                    $"Global {index} has WebAssembly value type {DescribeValueType(typeByte)}; only i32, i64, f32 and f64 globals are supported."),
            };
            var mutability = reader.ReadByte();
            if (mutability > 1)
            {
                throw new InvalidDataException(
                    $"Malformed WebAssembly module at offset {reader.AbsolutePosition - 1}: global {index} has mutability byte 0x{mutability:X2} (expected 0 or 1).");
            }

            var initStart = reader.AbsolutePosition;
            WasmConstantExpression.Skip(ref reader);
            globals.Add(new GlobalEntry(new WasmGlobalInfo(index, type, mutability == 1), typeStart, initStart, reader.AbsolutePosition));
        }

        reader.ExpectEnd("global section");
        return globals;
    }

    /// <summary>Parses the memory section.</summary>
    /// <param name="module">The module.</param>
    /// <param name="layout">Its sections.</param>
    /// <param name="importedMemories">How many memories are imported (the first defined memory's index).</param>
    private static List<WasmMemoryInfo> ParseMemories(ReadOnlySpan<byte> module, WasmModuleLayout layout, int importedMemories)
    {
        var memories = new List<WasmMemoryInfo>();
        if (layout.Find(WasmSectionId.Memory) is not { } section)
        {
            return memories;
        }

        var reader = section.PayloadReader(module);
        var count = reader.ReadCount("memories");
        for (var i = 0; i < count; i++)
        {
            var flags = reader.ReadByte();
            if (flags > 0x0F)
            {
                throw reader.Malformed($"memory {importedMemories + i} has invalid limit flags 0x{flags:X2}");
            }

            var is64 = (flags & 0x04) != 0;
            var minimum = is64 ? reader.ReadVarUInt64() : reader.ReadVarUInt32();
            ulong? maximum = (flags & 0x01) != 0 ? (is64 ? reader.ReadVarUInt64() : reader.ReadVarUInt32()) : null;
            var pageSizeLog2 = (flags & 0x08) != 0 ? (int)reader.ReadVarUInt32() : 16;
            memories.Add(new WasmMemoryInfo(importedMemories + i, minimum, maximum, (flags & 0x02) != 0, is64, pageSizeLog2));
        }

        reader.ExpectEnd("memory section");
        return memories;
    }

    /// <summary>Parses the data section.</summary>
    /// <param name="module">The module.</param>
    /// <param name="layout">Its sections.</param>
    private static List<WasmDataSegmentInfo> ParseDataSegments(ReadOnlySpan<byte> module, WasmModuleLayout layout)
    {
        var segments = new List<WasmDataSegmentInfo>();
        if (layout.Find(WasmSectionId.Data) is not { } section)
        {
            return segments;
        }

        var reader = section.PayloadReader(module);
        var count = reader.ReadCount("data segments");
        for (var i = 0; i < count; i++)
        {
            var entryStart = reader.AbsolutePosition;
            var flags = reader.ReadVarUInt32();
            var memoryIndex = 0;
            long? offset = null;
            switch (flags)
            {
                case PassiveSegment:
                    break;
                case ActiveMemoryZeroSegment:
                case ActiveExplicitMemorySegment:
                    if (flags == ActiveExplicitMemorySegment)
                    {
                        memoryIndex = reader.ReadIndex("memory index");
                    }

                    var expressionStart = reader.AbsolutePosition;
                    WasmConstantExpression.Skip(ref reader);
                    if (WasmConstantExpression.TryReadConstantOffset(module[expressionStart..reader.AbsolutePosition], out var constant))
                    {
                        offset = constant;
                    }

                    break;
                default:
                    throw new InvalidDataException(
                        $"Malformed WebAssembly module at offset {entryStart}: data segment {i} has invalid flags {flags}.");
            }

            var length = reader.ReadCount("data bytes");
            var contentStart = reader.AbsolutePosition;
            reader.Skip(length);
            segments.Add(new WasmDataSegmentInfo(
                i, flags == PassiveSegment, memoryIndex, offset, contentStart, length, entryStart, reader.AbsolutePosition));
        }

        reader.ExpectEnd("data section");
        return segments;
    }

    /// <summary>Reads past a value type: one byte, or a reference type prefix followed by a heap type.</summary>
    /// <param name="reader">The reader.</param>
    private static void SkipValueType(ref WasmBinaryReader reader)
    {
        var b = reader.ReadByte();
        if (b is 0x63 or 0x64)
        {
            reader.ReadVarInt33(); // (ref null ht) / (ref ht)
        }
    }

    /// <summary>Reads past limits (of a table or memory), in any of their encodings.</summary>
    /// <param name="reader">The reader.</param>
    private static void SkipLimits(ref WasmBinaryReader reader)
    {
        var flags = reader.ReadByte();
        if (flags > 0x0F)
        {
            throw reader.Malformed($"invalid limit flags 0x{flags:X2}");
        }

        var is64 = (flags & 0x04) != 0;
        var bounds = (flags & 0x01) != 0 ? 2 : 1;
        for (var i = 0; i < bounds; i++)
        {
            if (is64)
            {
                reader.ReadVarUInt64();
            }
            else
            {
                reader.ReadVarUInt32();
            }
        }

        if ((flags & 0x08) != 0)
        {
            reader.ReadVarUInt32(); // custom page size (log2)
        }
    }

    /// <summary>Names a value type byte for an error message.</summary>
    /// <param name="typeByte">The encoded value type.</param>
    private static string DescribeValueType(byte typeByte) => typeByte switch
    {
        0x7B => "v128",
        0x70 => "funcref",
        0x6F => "externref",
        0x63 or 0x64 => "(ref ...)",
        _ => $"0x{typeByte:X2}",
    };

    /// <summary>
    /// Writes the module out again: the header, then every section, either copied byte for byte or, when
    /// <paramref name="replacements"/> has a payload for its identifier, re-encoded with that payload. Replacement
    /// sections the module lacks are inserted where the section order requires.
    /// </summary>
    /// <param name="module">The original module.</param>
    /// <param name="layout">Its sections.</param>
    /// <param name="replacements">New payloads of non-custom sections, by identifier.</param>
    private static byte[] Reassemble(ReadOnlySpan<byte> module, WasmModuleLayout layout, Dictionary<WasmSectionId, byte[]> replacements)
    {
        var inserted = replacements.Keys
            .Where(id => layout.Find(id) is null)
            .Select(id => (Before: layout.InsertionIndexOf(id), Id: id))
            .OrderBy(x => x.Before)
            .ThenBy(x => WasmModuleLayout.OrderOf(x.Id))
            .ToList();

        // Size the output exactly, so that a module carrying a large memory image is not grown and copied repeatedly.
        long size = WasmModuleLayout.HeaderSize;
        foreach (var section in layout.Sections)
        {
            size += section.Id != WasmSectionId.Custom && replacements.TryGetValue(section.Id, out var payload)
                ? EncodedSectionSize(payload)
                : section.End - section.Start;
        }

        foreach (var (_, id) in inserted)
        {
            size += EncodedSectionSize(replacements[id]);
        }

        if (size > Array.MaxLength)
        {
            throw new NotSupportedException($"The rewritten module would be {size} bytes, more than an array can hold.");
        }

        var writer = new WasmBinaryWriter((int)size);
        writer.WriteBytes(module[..WasmModuleLayout.HeaderSize]);
        var next = 0;
        for (var i = 0; i <= layout.Sections.Count; i++)
        {
            for (; next < inserted.Count && inserted[next].Before == i; next++)
            {
                writer.WriteSection(inserted[next].Id, replacements[inserted[next].Id]);
            }

            if (i == layout.Sections.Count)
            {
                break;
            }

            var section = layout.Sections[i];
            if (section.Id != WasmSectionId.Custom && replacements.TryGetValue(section.Id, out var payload))
            {
                writer.WriteSection(section.Id, payload);
            }
            else
            {
                writer.WriteBytes(section.Encoded(module));
            }
        }

        return writer.ToArray();
    }

    /// <summary>The encoded size of a section with the given payload: identifier, LEB128 size and payload.</summary>
    /// <param name="payload">The payload.</param>
    private static long EncodedSectionSize(byte[] payload)
    {
        var sizeBytes = 1;
        for (var v = (uint)payload.Length >> 7; v != 0; v >>= 7)
        {
            sizeBytes++;
        }

        return 1L + sizeBytes + payload.Length;
    }

    /// <summary>How many items of each kind a module imports.</summary>
    /// <param name="Functions">Imported functions.</param>
    /// <param name="Tables">Imported tables.</param>
    /// <param name="Memories">Imported memories.</param>
    /// <param name="Globals">Imported globals.</param>
    /// <param name="Tags">Imported exception tags.</param>
    private readonly record struct ImportCounts(int Functions, int Tables, int Memories, int Globals, int Tags);

    /// <summary>A defined global and where its encoding lies in the module (absolute offsets).</summary>
    /// <param name="Info">What the global is.</param>
    /// <param name="TypeStart">Offset of its value type byte.</param>
    /// <param name="InitStart">Offset of its initializer expression (just after the mutability byte).</param>
    /// <param name="InitEnd">Offset just past the initializer's <c>end</c>.</param>
    private readonly record struct GlobalEntry(WasmGlobalInfo Info, int TypeStart, int InitStart, int InitEnd);
}
