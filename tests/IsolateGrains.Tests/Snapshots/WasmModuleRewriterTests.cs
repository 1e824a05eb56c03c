using IsolateGrains.Engine.Snapshots;
using Wasmtime;
using Xunit;
using Xunit.Abstractions;
using WasmEngine = Wasmtime.Engine;
using WasmModule = Wasmtime.Module;

namespace IsolateGrains.Tests.Snapshots;

/// <summary>
/// Tests of <see cref="WasmModuleRewriter"/>: small modules built from WAT are run in Wasmtime, snapshotted and
/// rebuilt, and the real dotnet.native.wasm is rewritten and validated.
/// </summary>
public sealed class WasmModuleRewriterTests(ITestOutputHelper output)
{
    /// <summary>
    /// One imported global (so defined globals start at index 1), a mutable global of each numeric type, an
    /// immutable one initialized from the import, sparse active data segments, and a function that changes memory,
    /// grows it and sets the globals.
    /// </summary>
    private const string SnapshotWat = """
        (module $snapshot
          (import "env" "base" (global $base i32))
          (memory (export "memory") 2 16)
          (global $counter (mut i32) (i32.const 7))
          (global $wide (mut i64) (i64.const -5))
          (global $single (mut f32) (f32.const 1.5))
          (global $double (mut f64) (f64.const 2.25))
          (global $fixed i32 (global.get $base))
          (data (i32.const 16) "hello")
          (data (i32.const 70000) "\01\02\03")
          (data (i32.const 100) "world")
          (func $mutate (export "mutate")
            (global.set $counter (i32.const -123456))
            (global.set $wide (i64.const 0x123456789abcdef0))
            (global.set $single (f32.const -3.75))
            (global.set $double (f64.const 6.02e23))
            (i32.store8 (i32.const 16) (i32.const 72))
            (drop (memory.grow (i32.const 1)))
            (i32.store (i32.const 140000) (i32.const 0xdeadbeef)))
          (func (export "counter") (result i32) (global.get $counter)))
        """;

    /// <summary>The value the host gives the imported global.</summary>
    private const int BaseValue = 1000;

    /// <summary>Known LEB128 encodings round-trip, at the edges of each width.</summary>
    [Fact]
    public void Leb128_EncodesShortestFormAndRoundTrips()
    {
        Assert.Equal(new byte[] { 0xE5, 0x8E, 0x26 }, EncodeUnsigned(624485));
        Assert.Equal(new byte[] { 0xC0, 0xBB, 0x78 }, EncodeSigned(-123456));
        Assert.Equal(new byte[] { 0x3F }, EncodeSigned(63));
        Assert.Equal(new byte[] { 0xC0, 0x00 }, EncodeSigned(64)); // 64 needs a second byte: bit 6 is the sign
        Assert.Equal(new byte[] { 0x40 }, EncodeSigned(-64));
        Assert.Equal(new byte[] { 0xBF, 0x7F }, EncodeSigned(-65));

        foreach (var value in new[] { 0, 1, -1, 63, 64, -64, -65, int.MaxValue, int.MinValue, 0x12345678 })
        {
            var bytes = EncodeSigned(value);
            var reader = new WasmBinaryReader(bytes);
            Assert.Equal(value, reader.ReadVarInt32());
            Assert.True(reader.IsAtEnd);
        }

        foreach (var value in new[] { 0L, -1L, long.MaxValue, long.MinValue, 0x123456789ABCDEF0L, int.MinValue - 1L })
        {
            var bytes = EncodeSigned(value);
            var reader = new WasmBinaryReader(bytes);
            Assert.Equal(value, reader.ReadVarInt64());
        }

        foreach (var value in new[] { 0u, 127u, 128u, uint.MaxValue })
        {
            var reader = new WasmBinaryReader(EncodeUnsigned(value));
            Assert.Equal(value, reader.ReadVarUInt32());
        }
    }

    /// <summary>Over-long encodings and values that do not fit the width are malformed, as the specification says.</summary>
    [Theory]
    [InlineData(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, false)] // six bytes for a u32
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x1F }, false)] // 2^33 - 1 does not fit a u32
    [InlineData(new byte[] { 0x80 }, false)] // truncated
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x4F }, true)] // unused bits are not a sign extension
    [InlineData(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, true)] // six bytes for an s32
    public void Leb128_RejectsOverlongOrOverflowingEncodings(byte[] bytes, bool signed)
    {
        Assert.Throws<InvalidDataException>(() =>
        {
            var reader = new WasmBinaryReader(bytes);
            _ = signed ? reader.ReadVarInt32() : (long)reader.ReadVarUInt32();
        });
    }

    /// <summary>Defined globals are reported with absolute indices (after the imported one), types and mutability.</summary>
    [Fact]
    public void ReadDefinedGlobals_ReportsIndexTypeAndMutability()
    {
        var globals = WasmModuleRewriter.ReadDefinedGlobals(WasmModule.ConvertText(SnapshotWat));

        Assert.Equal(
            new[]
            {
                new WasmGlobalInfo(1, WasmValueType.I32, true),
                new WasmGlobalInfo(2, WasmValueType.I64, true),
                new WasmGlobalInfo(3, WasmValueType.F32, true),
                new WasmGlobalInfo(4, WasmValueType.F64, true),
                new WasmGlobalInfo(5, WasmValueType.I32, false),
            },
            globals);
    }

    /// <summary>Reference-typed globals cannot be snapshotted as constants: a clear refusal, not a misparse.</summary>
    [Fact]
    public void ReadDefinedGlobals_RejectsReferenceTypedGlobals()
    {
        var module = WasmModule.ConvertText("(module (global (mut funcref) (ref.null func)))");

        var error = Assert.Throws<NotSupportedException>(() => WasmModuleRewriter.ReadDefinedGlobals(module));
        Assert.Contains("funcref", error.Message);
    }

    /// <summary>
    /// The rewritten module exports every defined global under prefix + index, keeps the existing exports, and
    /// keeps custom sections (the <c>name</c> section WAT identifiers produce) byte for byte.
    /// </summary>
    [Fact]
    public void ExportDefinedGlobals_ExposesGlobals_AndKeepsExportsAndCustomSections()
    {
        var original = WasmModule.ConvertText(SnapshotWat);

        var rewritten = WasmModuleRewriter.ExportDefinedGlobals(original, WasmModuleRewriter.GlobalExportPrefix);

        Assert.NotEmpty(CustomSections(original));
        Assert.Equal(CustomSections(original), CustomSections(rewritten));

        using var engine = new WasmEngine();
        using var module = WasmModule.FromBytes(engine, "exported", rewritten);
        Assert.Equal(
            new[] { "memory", "mutate", "counter", "__ig_global_1", "__ig_global_2", "__ig_global_3", "__ig_global_4", "__ig_global_5" },
            module.Exports.Select(e => e.Name));

        using var store = new Store(engine);
        var instance = Instantiate(engine, store, module);
        Assert.Equal(7, instance.GetGlobal("__ig_global_1")!.GetValue());
        Assert.Equal(-5L, instance.GetGlobal("__ig_global_2")!.GetValue());
        Assert.Equal(1.5f, instance.GetGlobal("__ig_global_3")!.GetValue());
        Assert.Equal(2.25, instance.GetGlobal("__ig_global_4")!.GetValue());
        Assert.Equal(BaseValue, instance.GetGlobal("__ig_global_5")!.GetValue());

        // The export is the global itself, not a copy: the host's writes are what the guest reads.
        instance.GetGlobal("__ig_global_1")!.SetValue(99);
        Assert.Equal(99, instance.GetFunction("counter")!.Invoke());
    }

    /// <summary>A module without an export section gets one, at a position that keeps the section order valid.</summary>
    [Fact]
    public void ExportDefinedGlobals_AddsExportSection_WhenTheModuleHasNone()
    {
        var original = WasmModule.ConvertText("(module (memory 1) (global (mut i64) (i64.const 9)) (func) (data (i32.const 0) \"x\"))");
        Assert.Null(WasmModuleLayout.Parse(original).Find(WasmSectionId.Export));

        var rewritten = WasmModuleRewriter.ExportDefinedGlobals(original, "g");

        using var engine = new WasmEngine();
        Assert.Null(WasmModule.Validate(engine, rewritten));
        using var module = WasmModule.FromBytes(engine, "inserted", rewritten);
        using var store = new Store(engine);
        var instance = new Instance(store, module);
        Assert.Equal(9L, instance.GetGlobal("g0")!.GetValue());
    }

    /// <summary>Export names must be unique: rewriting twice with the same prefix is refused clearly.</summary>
    [Fact]
    public void ExportDefinedGlobals_RejectsAClashingName()
    {
        var once = WasmModuleRewriter.ExportDefinedGlobals(WasmModule.ConvertText(SnapshotWat), "p");

        var error = Assert.Throws<ArgumentException>(() => WasmModuleRewriter.ExportDefinedGlobals(once, "p"));
        Assert.Contains("p1", error.Message);
    }

    /// <summary>
    /// The whole snapshot cycle: run an instance that changes memory (and grows it) and globals, capture both,
    /// build the pre-initialized module, and check that a fresh instance of it starts exactly there, from one
    /// dense data segment.
    /// </summary>
    [Fact]
    public void BuildPreinitializedModule_FreshInstanceStartsAtTheSnapshot()
    {
        var exported = WasmModuleRewriter.ExportDefinedGlobals(WasmModule.ConvertText(SnapshotWat), WasmModuleRewriter.GlobalExportPrefix);
        var globals = WasmModuleRewriter.ReadDefinedGlobals(exported);
        using var engine = new WasmEngine();

        byte[] image;
        List<(int GlobalIndex, long Bits)> values;
        using (var module = WasmModule.FromBytes(engine, "booted", exported))
        using (var store = new Store(engine))
        {
            var instance = Instantiate(engine, store, module);
            instance.GetFunction("mutate")!.Invoke();
            var memory = instance.GetMemory("memory")!;
            image = memory.GetSpan(0, checked((int)memory.GetLength())).ToArray();
            values = globals
                .Where(g => g.IsMutable)
                .Select(g => (g.Index, ToBits(instance.GetGlobal(WasmModuleRewriter.GlobalExportPrefix + g.Index)!.GetValue())))
                .ToList();
        }

        Assert.Equal(3 * WasmModuleRewriter.PageSize, image.Length);

        var preinitialized = WasmModuleRewriter.BuildPreinitializedModule(exported, image, values);

        var segment = Assert.Single(WasmModuleRewriter.ReadDataSegments(preinitialized));
        Assert.False(segment.IsPassive);
        Assert.Equal(0L, segment.Offset); // first non-zero byte is at 16, rounded down to 64 KiB
        Assert.Equal(140004, segment.Length); // up to the last byte of 0xdeadbeef at 140000
        var memoryInfo = Assert.Single(WasmModuleRewriter.ReadDefinedMemories(preinitialized));
        Assert.Equal(3UL, memoryInfo.MinimumPages);
        Assert.Equal(16UL, memoryInfo.MaximumPages);

        using (var module = WasmModule.FromBytes(engine, "preinitialized", preinitialized))
        using (var store = new Store(engine))
        {
            var instance = Instantiate(engine, store, module);
            var memory = instance.GetMemory("memory")!;
            Assert.Equal(image.Length, memory.GetLength());
            Assert.True(image.AsSpan().SequenceEqual(memory.GetSpan(0, image.Length)), "memory differs from the image");
            Assert.Equal(-123456, instance.GetGlobal("__ig_global_1")!.GetValue());
            Assert.Equal(0x123456789abcdef0L, instance.GetGlobal("__ig_global_2")!.GetValue());
            Assert.Equal(-3.75f, instance.GetGlobal("__ig_global_3")!.GetValue());
            Assert.Equal(6.02e23, instance.GetGlobal("__ig_global_4")!.GetValue());
            Assert.Equal(BaseValue, instance.GetGlobal("__ig_global_5")!.GetValue()); // not listed: initializer kept
            Assert.Equal(-123456, instance.GetFunction("counter")!.Invoke());
        }
    }

    /// <summary>
    /// The dense segment starts at the first non-zero byte rounded down to 64 KiB and ends at the last non-zero
    /// byte; the maximum is kept; an all-zero image needs no segment at all.
    /// </summary>
    [Fact]
    public void BuildPreinitializedModule_DenseSegmentSpansTheNonZeroBytesOnly()
    {
        var original = WasmModule.ConvertText("(module (memory (export \"memory\") 2 8) (data (i32.const 5) \"a\") (data (i32.const 9) \"b\"))");
        var image = new byte[4 * WasmModuleRewriter.PageSize];
        image[70000] = 1;
        image[200000] = 2;

        var preinitialized = WasmModuleRewriter.BuildPreinitializedModule(original, image, []);

        var segment = Assert.Single(WasmModuleRewriter.ReadDataSegments(preinitialized));
        Assert.Equal(WasmModuleRewriter.PageSize, segment.Offset);
        Assert.Equal(200001 - WasmModuleRewriter.PageSize, segment.Length);
        Assert.True(preinitialized.AsSpan(segment.ContentStart, segment.Length).SequenceEqual(image.AsSpan(WasmModuleRewriter.PageSize, segment.Length)));
        Assert.Equal(new WasmMemoryInfo(0, 4, 8, false, false, 16), Assert.Single(WasmModuleRewriter.ReadDefinedMemories(preinitialized)));

        var empty = WasmModuleRewriter.BuildPreinitializedModule(original, new byte[2 * WasmModuleRewriter.PageSize], []);
        Assert.Empty(WasmModuleRewriter.ReadDataSegments(empty));

        using var engine = new WasmEngine();
        Assert.Null(WasmModule.Validate(engine, preinitialized));
        Assert.Null(WasmModule.Validate(engine, empty));
        using var module = WasmModule.FromBytes(engine, "aligned", preinitialized);
        using var store = new Store(engine);
        var memory = new Instance(store, module).GetMemory("memory")!;
        Assert.True(image.AsSpan().SequenceEqual(memory.GetSpan(0, image.Length)));
    }

    /// <summary>
    /// Passive segments keep their indices (an earlier active one becomes an empty passive placeholder), the data
    /// count is updated, and <c>memory.init</c> still copies the right segment.
    /// </summary>
    [Fact]
    public void BuildPreinitializedModule_KeepsPassiveSegmentIndices()
    {
        var original = WasmModule.ConvertText("""
            (module
              (memory (export "memory") 1)
              (data (i32.const 8) "active0")
              (data $passive "PASSIVE")
              (data (i32.const 32) "active2")
              (func (export "init") (memory.init $passive (i32.const 100) (i32.const 0) (i32.const 7))))
            """);
        Assert.NotNull(WasmModuleLayout.Parse(original).Find(WasmSectionId.DataCount));
        var image = new byte[WasmModuleRewriter.PageSize];
        "snapshot"u8.CopyTo(image.AsSpan(200));

        var preinitialized = WasmModuleRewriter.BuildPreinitializedModule(original, image, []);

        var segments = WasmModuleRewriter.ReadDataSegments(preinitialized);
        Assert.Equal(3, segments.Count);
        Assert.True(segments[0].IsPassive);
        Assert.Equal(0, segments[0].Length);
        Assert.True(segments[1].IsPassive);
        Assert.True(preinitialized.AsSpan(segments[1].ContentStart, segments[1].Length).SequenceEqual("PASSIVE"u8));
        Assert.False(segments[2].IsPassive);
        var dataCount = WasmModuleLayout.Parse(preinitialized).Find(WasmSectionId.DataCount)!.Value;
        Assert.Equal(3, dataCount.Payload(preinitialized)[0]);

        using var engine = new WasmEngine();
        using var module = WasmModule.FromBytes(engine, "passive", preinitialized);
        using var store = new Store(engine);
        var instance = new Instance(store, module);
        var memory = instance.GetMemory("memory")!;
        Assert.True(memory.GetSpan(200, 8).SequenceEqual("snapshot"u8));
        Assert.Equal(0, memory.ReadByte(8)); // the old active segments are gone: the image is the whole truth
        instance.GetFunction("init")!.Invoke();
        Assert.True(memory.GetSpan(100, 7).SequenceEqual("PASSIVE"u8));
    }

    /// <summary>Arguments that cannot describe a snapshot of this module are refused with a clear message.</summary>
    [Fact]
    public void BuildPreinitializedModule_RejectsInconsistentArguments()
    {
        var module = WasmModule.ConvertText(SnapshotWat);
        var image = new byte[2 * WasmModuleRewriter.PageSize];

        Assert.Throws<ArgumentException>(() => WasmModuleRewriter.BuildPreinitializedModule(module, new byte[1000], []));
        Assert.Throws<ArgumentException>(() => WasmModuleRewriter.BuildPreinitializedModule(module, new byte[WasmModuleRewriter.PageSize], []));
        Assert.Throws<ArgumentException>(() => WasmModuleRewriter.BuildPreinitializedModule(module, new byte[17 * WasmModuleRewriter.PageSize], []));
        var imported = Assert.Throws<ArgumentException>(() => WasmModuleRewriter.BuildPreinitializedModule(module, image, [(0, 1)]));
        Assert.Contains("imported", imported.Message);
        Assert.Throws<ArgumentException>(() => WasmModuleRewriter.BuildPreinitializedModule(module, image, [(6, 1)]));
        Assert.Throws<ArgumentException>(() => WasmModuleRewriter.BuildPreinitializedModule(module, image, [(1, 1), (1, 2)]));

        var importedMemory = WasmModule.ConvertText("(module (import \"env\" \"memory\" (memory 1)))");
        Assert.Throws<NotSupportedException>(() => WasmModuleRewriter.BuildPreinitializedModule(importedMemory, image, []));
        var noMemory = WasmModule.ConvertText("(module (global (mut i32) (i32.const 0)))");
        Assert.Throws<NotSupportedException>(() => WasmModuleRewriter.BuildPreinitializedModule(noMemory, image, []));
    }

    /// <summary>Malformed modules are reported as <see cref="InvalidDataException"/>, by every operation.</summary>
    [Theory]
    [InlineData("")]
    [InlineData("00 61 73 6D")] // header cut short
    [InlineData("7F 45 4C 46 01 00 00 00")] // not \0asm
    [InlineData("00 61 73 6D 02 00 00 00")] // version 2
    [InlineData("00 61 73 6D 0D 00 01 00")] // a component
    [InlineData("00 61 73 6D 01 00 00 00 06 05 01 7F")] // section size beyond the end
    [InlineData("00 61 73 6D 01 00 00 00 20 00")] // unknown section id
    [InlineData("00 61 73 6D 01 00 00 00 06 01 00 06 01 00")] // global section twice
    [InlineData("00 61 73 6D 01 00 00 00 07 01 00 06 01 00")] // export before global
    [InlineData("00 61 73 6D 01 00 00 00 06 04 01 7F 01 41")] // global initializer cut short
    [InlineData("00 61 73 6D 01 00 00 00 06 07 01 7F 01 41 00 0B 00")] // trailing byte in the global section
    [InlineData("00 61 73 6D 01 00 00 00 06 06 01 7F 02 41 00 0B")] // mutability byte 2
    public void MalformedModules_ThrowInvalidDataException(string hex)
    {
        var module = Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal));

        Assert.Throws<InvalidDataException>(() => WasmModuleRewriter.ReadDefinedGlobals(module));
        Assert.Throws<InvalidDataException>(() => WasmModuleRewriter.ExportDefinedGlobals(module, "g"));
        Assert.Throws<InvalidDataException>(() =>
            WasmModuleRewriter.BuildPreinitializedModule(module, new byte[WasmModuleRewriter.PageSize], []));
    }

    /// <summary>A data segment with unknown flags is malformed, for the operations that read data segments.</summary>
    [Fact]
    public void MalformedDataSection_ThrowsInvalidDataException()
    {
        // One memory of one page, then a data section whose only segment has flags 3.
        var module = Convert.FromHexString("0061736D01000000" + "0503010001" + "0B050103000000");

        Assert.Throws<InvalidDataException>(() => WasmModuleRewriter.ReadDataSegments(module));
        Assert.Throws<InvalidDataException>(() =>
            WasmModuleRewriter.BuildPreinitializedModule(module, new byte[WasmModuleRewriter.PageSize], []));
    }

    /// <summary>
    /// The real target, the Mono runtime's dotnet.native.wasm: its globals are found, exported (checked by
    /// compiling, once), and a pre-initialized module built from its own data segments validates with a single
    /// dense segment that holds exactly that data.
    /// </summary>
    [Fact]
    public void DotnetNativeWasm_GlobalsExportAndPreinitialization()
    {
        var original = File.ReadAllBytes(DotnetNativeWasmPath());
        var layout = WasmModuleLayout.Parse(original);
        var globals = WasmModuleRewriter.ReadDefinedGlobals(original);
        var memory = Assert.Single(WasmModuleRewriter.ReadDefinedMemories(original));
        var segments = WasmModuleRewriter.ReadDataSegments(original);
        output.WriteLine($"sections: {string.Join(", ", layout.Sections.Select(s => $"{s.Id}({s.PayloadLength})"))}");
        output.WriteLine($"memory: index {memory.Index}, min {memory.MinimumPages} pages, max {memory.MaximumPages?.ToString() ?? "none"}, shared {memory.IsShared}");
        output.WriteLine($"data segments: {segments.Count(s => !s.IsPassive)} active, {segments.Count(s => s.IsPassive)} passive, " +
            $"{segments.Sum(s => (long)s.Length)} bytes, offsets {segments.Min(s => s.Offset)}..{segments.Max(s => s.Offset)}");
        output.WriteLine($"start section: {layout.Find(WasmSectionId.Start) is not null}, data count section: {layout.Find(WasmSectionId.DataCount) is not null}");
        foreach (var global in globals)
        {
            output.WriteLine($"global {global.Index}: {global.Type}, {(global.IsMutable ? "mutable" : "immutable")}");
        }

        Assert.NotEmpty(globals);
        Assert.Null(layout.Find(WasmSectionId.Start));
        Assert.All(segments, s => Assert.NotNull(s.Offset));

        // Export: compiling checks everything, and proves the new exports are globals of the right types.
        var exported = WasmModuleRewriter.ExportDefinedGlobals(original, WasmModuleRewriter.GlobalExportPrefix);
        using var engine = new WasmEngine();
        using (var module = WasmModule.FromBytes(engine, "dotnet.native.exported", exported))
        {
            var exportNames = module.Exports.Select(e => e.Name).ToHashSet();
            foreach (var global in globals)
            {
                Assert.Contains(WasmModuleRewriter.GlobalExportPrefix + global.Index, exportNames);
            }

            var originalExports = new WasmBinaryReader(layout.Find(WasmSectionId.Export)!.Value.Payload(original)).ReadVarUInt32();
            Assert.Equal((int)originalExports + globals.Count, module.Exports.Count);
        }

        // Pre-initialization from the module's own initial memory (its data segments applied to zeroed pages).
        var image = new byte[checked((int)memory.MinimumPages * WasmModuleRewriter.PageSize)];
        foreach (var segment in segments)
        {
            original.AsSpan(segment.ContentStart, segment.Length).CopyTo(image.AsSpan(checked((int)segment.Offset!.Value)));
        }

        var values = globals.Where(g => g.IsMutable).Select(g => (g.Index, (long)(g.Index + 1) * 16)).ToList();
        var preinitialized = WasmModuleRewriter.BuildPreinitializedModule(exported, image, values);

        Assert.Null(WasmModule.Validate(engine, preinitialized));
        var dense = Assert.Single(WasmModuleRewriter.ReadDataSegments(preinitialized));
        Assert.Equal(0, dense.Offset!.Value % WasmModuleRewriter.PageSize);
        Assert.True(preinitialized.AsSpan(dense.ContentStart, dense.Length).SequenceEqual(image.AsSpan(checked((int)dense.Offset.Value), dense.Length)));
        Assert.True(image.AsSpan(checked((int)dense.Offset.Value + dense.Length)).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(memory.MinimumPages, Assert.Single(WasmModuleRewriter.ReadDefinedMemories(preinitialized)).MinimumPages);
        Assert.Equal(globals, WasmModuleRewriter.ReadDefinedGlobals(preinitialized));
        output.WriteLine($"pre-initialized: {preinitialized.Length} bytes, one segment at {dense.Offset} of {dense.Length} bytes");
    }

    /// <summary>Instantiates a module built from <see cref="SnapshotWat"/>, providing its imported global.</summary>
    /// <param name="engine">The engine.</param>
    /// <param name="store">The store.</param>
    /// <param name="module">The module.</param>
    private static Instance Instantiate(WasmEngine engine, Store store, WasmModule module)
    {
        using var linker = new Linker(engine);
        linker.Define("env", "base", new Global(store, ValueKind.Int32, BaseValue, Mutability.Immutable));
        return linker.Instantiate(store, module);
    }

    /// <summary>The raw bits of a global's value, as <see cref="WasmModuleRewriter.BuildPreinitializedModule"/> takes them.</summary>
    /// <param name="value">A value returned by <see cref="Global.GetValue"/>.</param>
    private static long ToBits(object? value) => value switch
    {
        int i => i,
        long l => l,
        float f => BitConverter.SingleToInt32Bits(f),
        double d => BitConverter.DoubleToInt64Bits(d),
        _ => throw new InvalidOperationException($"Unexpected global value {value}."),
    };

    /// <summary>The encoded custom sections of a module, in order.</summary>
    /// <param name="module">The module.</param>
    private static List<byte[]> CustomSections(byte[] module) =>
        WasmModuleLayout.Parse(module).Sections
            .Where(s => s.Id == WasmSectionId.Custom)
            .Select(s => module[s.Start..s.End])
            .ToList();

    /// <summary>Signed LEB128 encoding of a value.</summary>
    /// <param name="value">The value.</param>
    private static byte[] EncodeSigned(long value)
    {
        var writer = new WasmBinaryWriter();
        writer.WriteVarInt64(value);
        return writer.ToArray();
    }

    /// <summary>Unsigned LEB128 encoding of a value.</summary>
    /// <param name="value">The value.</param>
    private static byte[] EncodeUnsigned(uint value)
    {
        var writer = new WasmBinaryWriter();
        writer.WriteVarUInt32(value);
        return writer.ToArray();
    }

    /// <summary>The runtime pack's dotnet.native.wasm in the NuGet package folder.</summary>
    private static string DotnetNativeWasmPath()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(root))
        {
            root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        }

        var path = Path.Combine(
            root, "microsoft.netcore.app.runtime.mono.browser-wasm", "10.0.12", "runtimes", "browser-wasm", "native", "dotnet.native.wasm");
        Assert.True(File.Exists(path), $"dotnet.native.wasm not found at {path}: restore src/IsolateGrains first.");
        return path;
    }
}
