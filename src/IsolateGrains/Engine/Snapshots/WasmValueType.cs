namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// The numeric value types a global may have here, with their binary encodings as values.
/// Vector and reference types are deliberately absent: a snapshot cannot capture them as constants.
/// </summary>
internal enum WasmValueType : byte
{
    /// <summary>32-bit integer (<c>0x7F</c>).</summary>
    I32 = 0x7F,

    /// <summary>64-bit integer (<c>0x7E</c>).</summary>
    I64 = 0x7E,

    /// <summary>32-bit IEEE 754 float (<c>0x7D</c>).</summary>
    F32 = 0x7D,

    /// <summary>64-bit IEEE 754 float (<c>0x7C</c>).</summary>
    F64 = 0x7C,
}
