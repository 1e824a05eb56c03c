namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// The section identifiers of the WebAssembly binary format (core specification, section 5.5.2,
/// plus the data count section of bulk memory and the tag section of exception handling).
/// </summary>
internal enum WasmSectionId : byte
{
    /// <summary>A custom section (e.g. <c>name</c>): may appear anywhere, ignored by validation.</summary>
    Custom = 0,

    /// <summary>Function signatures.</summary>
    Type = 1,

    /// <summary>Imported functions, tables, memories, globals and tags.</summary>
    Import = 2,

    /// <summary>The type index of every defined function.</summary>
    Function = 3,

    /// <summary>Defined tables.</summary>
    Table = 4,

    /// <summary>Defined linear memories.</summary>
    Memory = 5,

    /// <summary>Defined globals with their initializer expressions.</summary>
    Global = 6,

    /// <summary>Exported items.</summary>
    Export = 7,

    /// <summary>The start function, run at instantiation.</summary>
    Start = 8,

    /// <summary>Element segments (table initializers).</summary>
    Element = 9,

    /// <summary>Function bodies.</summary>
    Code = 10,

    /// <summary>Data segments (memory initializers).</summary>
    Data = 11,

    /// <summary>The number of data segments, declared before the code so that <c>memory.init</c> and <c>data.drop</c> validate in one pass.</summary>
    DataCount = 12,

    /// <summary>Exception tags (exception-handling proposal).</summary>
    Tag = 13,
}
